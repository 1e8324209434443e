"""ShelfWise tests. The package tree mirrors ``shelfwise/``."""
