"""Tests for shelfwise."""
