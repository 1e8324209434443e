"""Tests of the workbook machinery and of the documentation site."""
