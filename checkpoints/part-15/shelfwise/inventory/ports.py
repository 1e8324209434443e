"""What the inventory needs from storage."""

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class StockRepository(Protocol):
    """Reads and records how many copies of each book are on hand."""

    async def quantity(self, book_id: int) -> int:
        """Return the copies on hand; a book that was never stocked has 0."""
        ...

    async def set_quantity(self, book_id: int, quantity: int) -> None:
        """Record that ``quantity`` copies of the book are on hand."""
        ...

    async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
        """Take ``quantity`` copies off the stock if that many are on hand.

        Returns whether it did. Check and change are one atomic step, so two concurrent orders
        can never both take the last copy and stock never goes negative.
        """
        ...


class StockSessions(Protocol):
    """Opens stock repositories on sessions of their own, for reads that run concurrently.

    A session is one connection and one transaction; two tasks must never share one.
    """

    def open(self) -> AbstractAsyncContextManager[StockRepository]:
        """A stock repository on a new session, closed when the ``async with`` block ends."""
        ...
