"""Tests of the tenancy feature: the tenant context and both walls."""
