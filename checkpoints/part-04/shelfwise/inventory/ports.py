"""What the inventory needs from storage."""

from typing import Protocol


class StockRepository(Protocol):
    """Reads and records how many copies of each book are on hand."""

    async def quantity(self, book_id: int) -> int:
        """Return the copies on hand; a book that was never stocked has 0."""
        ...

    async def set_quantity(self, book_id: int, quantity: int) -> None:
        """Record that ``quantity`` copies of the book are on hand."""
        ...
