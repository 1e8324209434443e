"""Tests of the catalog feature."""
