"""ShelfWise: a catalog, inventory and orders backend for bookstores and their suppliers."""
