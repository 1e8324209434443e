"""Tests of the identity feature: logging in and tokens."""
