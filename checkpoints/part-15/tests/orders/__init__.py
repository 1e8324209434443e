"""Tests of the orders feature."""
