"""The inventory feature: how many copies of each book are on hand.

It owns stock levels and the rules for changing them (quantities are never negative). It depends
on the catalog only to check that a book exists.
"""
