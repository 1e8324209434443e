"""Tests of the inventory feature."""
