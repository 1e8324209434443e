"""Inventory use cases."""

import asyncio
import random
from collections.abc import Sequence
from functools import partial

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.ports import BookRepository
from shelfwise.inventory.errors import (
    CountBelowReservedError,
    InsufficientStockError,
    InvalidQuantityError,
    StockContendedError,
)
from shelfwise.inventory.ports import StockLevel, StockRepository, StockSessions
from shelfwise.platform.concurrency import bounded_gather
from shelfwise.platform.errors import ConcurrentUpdateError, PreconditionFailedError
from shelfwise.platform.unit_of_work import UnitOfWork

# A sanity bound: far above any real stock count, and it keeps typos like 10000000 out.
MAX_STOCK_QUANTITY = 1_000_000
# A stock report holds at most this many database connections at once, whatever its size,
# so it can never drain the pool that requests need.
MAX_CONCURRENT_STOCK_READS = 4
STOCK_READ_TIMEOUT_SECONDS = 5.0
# An adjustment that loses a race reads again and retries: a few times, each after a short
# random pause (jitter), so two losers do not collide again in step.
ADJUST_ATTEMPTS = 5
ADJUST_BACKOFF_SECONDS = 0.01


class InventoryService:
    """Records and reports how many copies of each catalog book are on hand."""

    def __init__(self, books: BookRepository, stock: StockRepository, uow: UnitOfWork) -> None:
        self._books = books
        self._stock = stock
        self._uow = uow

    async def set_stock(
        self, book_id: int, quantity: int, *, versions: frozenset[int] | None = None
    ) -> StockLevel:
        """Record a stocktake: ``quantity`` copies on the shelf, those reserved by orders that
        have not shipped included. Returns the new level, whose ``quantity`` is what can be
        ordered (the count less the reserved copies).

        ``versions``: only if the count is still at one of them (from ``If-Match``), else
        ``PreconditionFailedError``; ``None`` sets it whatever it is. A count below the reserved
        copies is ``CountBelowReservedError``.
        """
        _check_quantity(quantity)
        async with self._uow:
            await self._require_book(book_id)
            current = await self._stock.level(book_id)
            expected = None
            if versions is not None:
                expected = current.version
                if expected not in versions:
                    raise PreconditionFailedError(
                        f"Book {book_id}'s stock is at version {expected}, not the one given."
                    )
            # The write checks both again: a change between the read and here fails it.
            level = await self._stock.set_quantity(book_id, quantity, version=expected)
            if level is None:
                reserved = (await self._stock.level(book_id)).reserved
                if quantity < reserved:
                    raise CountBelowReservedError(book_id, quantity, reserved)
                raise PreconditionFailedError(f"Book {book_id}'s stock changed meanwhile.")
            await self._uow.commit()
        return level

    async def adjust_stock(self, book_id: int, change: int) -> StockLevel:
        """Add ``change`` copies (a delivery) or take them off (a write-off, when negative).

        A read-modify-write: it reads the count, adds, and writes the sum, with the version it
        read as the condition. When another change got in between, it reads again and retries,
        up to ``ADJUST_ATTEMPTS`` times, then raises ``StockContendedError``.
        """
        if change == 0 or abs(change) > MAX_STOCK_QUANTITY:
            raise InvalidQuantityError(
                f"A stock change is a non-zero number of copies, at most {MAX_STOCK_QUANTITY} "
                f"either way; got {change}."
            )
        for attempt in range(1, ADJUST_ATTEMPTS + 1):
            try:
                return await self._adjust_once(book_id, change)
            except ConcurrentUpdateError:
                if attempt < ADJUST_ATTEMPTS:
                    await asyncio.sleep(random.uniform(0, ADJUST_BACKOFF_SECONDS * 2**attempt))
        raise StockContendedError(
            f"Book {book_id}'s stock changed under each of {ADJUST_ATTEMPTS} attempts."
        )

    async def _adjust_once(self, book_id: int, change: int) -> StockLevel:
        async with self._uow:
            await self._require_book(book_id)
            stock = await self._stock.get(book_id)
            on_hand = 0 if stock is None else stock.quantity
            if on_hand + change < 0:  # reserved copies are the orders', not to write off
                raise InsufficientStockError(book_id, -change, on_hand)
            _check_quantity(on_hand + change + (0 if stock is None else stock.reserved))
            if stock is None:
                # Never stocked: the first count is an insert, and only one can win it.
                level = await self._stock.set_quantity(book_id, change, version=0)
                if level is None:
                    raise ConcurrentUpdateError(f"Book {book_id} was stocked meanwhile.")
                await self._uow.commit()
                return level
            stock.quantity = on_hand + change  # the ORM writes it WHERE version = <as read>
            await self._uow.commit()
            return StockLevel(stock.quantity, stock.version, stock.reserved)

    async def get_stock(self, book_id: int) -> StockLevel:
        """Return the copies on hand and their version (0, 0 if the book was never stocked)."""
        await self._require_book(book_id)
        return await self._stock.level(book_id)

    async def _require_book(self, book_id: int) -> None:
        if await self._books.get(book_id) is None:
            raise BookNotFoundError(book_id)


def _check_quantity(quantity: int) -> None:
    if not 0 <= quantity <= MAX_STOCK_QUANTITY:
        raise InvalidQuantityError(
            f"A stock quantity is between 0 and {MAX_STOCK_QUANTITY}, got {quantity}."
        )


class StockReport:
    """Reads the stock levels of many books at once.

    The reads are independent, so they run concurrently, each in a session of its own: sharing
    one session between tasks fails ("concurrent operations are not permitted"). At most
    ``concurrency`` sessions are open at a time, and each read gets ``timeout`` seconds.
    """

    def __init__(
        self,
        sessions: StockSessions,
        *,
        concurrency: int = MAX_CONCURRENT_STOCK_READS,
        timeout: float = STOCK_READ_TIMEOUT_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._concurrency = concurrency
        self._timeout = timeout

    async def levels(self, book_ids: Sequence[int]) -> dict[int, int]:
        """Copies on hand per book id, in the order asked (each id once).

        Like a book never stocked, an id the catalog does not know has 0.
        """
        unique_ids = list(dict.fromkeys(book_ids))
        quantities = await bounded_gather(
            [partial(self._read, book_id) for book_id in unique_ids],
            limit=self._concurrency,
            timeout=self._timeout,
        )
        return dict(zip(unique_ids, quantities, strict=True))

    async def _read(self, book_id: int) -> int:
        async with self._sessions.open() as stock:
            return await stock.quantity(book_id)
