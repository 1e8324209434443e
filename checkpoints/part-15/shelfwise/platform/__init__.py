"""Shared platform code every feature may use: settings, persistence plumbing, errors, money.

The platform is the lowest layer. It knows nothing about books, stock or orders, so any feature
can depend on it without creating a cycle.
"""
