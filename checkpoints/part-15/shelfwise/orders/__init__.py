"""The orders feature: quotes, and later orders placed by bookstores.

It owns pricing a basket (list prices, bulk discounts, totals) and checking that enough stock is
available. It sits above the catalog and inventory and reads from both.
"""
