"""What the inventory needs from storage."""

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from shelfwise.inventory.models import Stock


@dataclass(frozen=True)
class StockLevel:
    """Copies that can be ordered, the version of the count (0: never stocked), and the copies
    reserved by orders that have not shipped."""

    quantity: int
    version: int
    reserved: int = 0


class StockRepository(Protocol):
    """Reads and records how many copies of each book are on hand."""

    async def quantity(self, book_id: int) -> int:
        """Return the copies on hand; a book that was never stocked has 0."""
        ...

    async def level(self, book_id: int) -> StockLevel:
        """Return the copies on hand with the count's version (``0, 0`` if never stocked)."""
        ...

    async def get(self, book_id: int) -> Stock | None:
        """Return the book's stock row, to change it through the ORM (versioned)."""
        ...

    async def set_quantity(
        self, book_id: int, on_shelf: int, *, version: int | None = None
    ) -> StockLevel | None:
        """Record a count of ``on_shelf`` copies (reserved ones included) and return the new
        level: what can be ordered is the count less the reserved copies.

        Nothing changes, and the result is ``None``, when the count is below the reserved
        copies, or (with ``version``) when the count is no longer at that version (0: never
        stocked).
        """
        ...

    async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
        """Reserve ``quantity`` copies if that many can be ordered: they leave ``quantity`` for
        ``reserved`` until the order ships or is cancelled.

        Returns whether it did. Check and change are one atomic step, so two concurrent orders
        can never both take the last copy and stock never goes negative.
        """
        ...

    async def release(self, book_id: int, quantity: int) -> None:
        """Give ``quantity`` reserved copies back to be ordered (an order that will not ship)."""
        ...

    async def ship(self, book_id: int, quantity: int) -> None:
        """``quantity`` reserved copies leave the shelf (their order shipped)."""
        ...


class StockSessions(Protocol):
    """Opens stock repositories on sessions of their own, for reads that run concurrently.

    A session is one connection and one transaction; two tasks must never share one.
    """

    def open(self) -> AbstractAsyncContextManager[StockRepository]:
        """A stock repository on a new session, closed when the ``async with`` block ends."""
        ...
