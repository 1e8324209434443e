"""ShelfWise."""
