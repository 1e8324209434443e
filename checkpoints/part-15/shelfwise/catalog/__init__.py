"""The catalog feature: authors and books.

It owns what a book *is*: its ISBN, title, author, category and list price, and the rules for
creating, finding and searching books. Other features refer to books by id and ask the catalog
for their details; they never change catalog data themselves.
"""
