"""Tests of the shared platform code."""
