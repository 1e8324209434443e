"""Inventory use cases."""

from collections.abc import Sequence
from functools import partial

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.ports import BookRepository
from shelfwise.inventory.errors import InvalidQuantityError
from shelfwise.inventory.ports import StockRepository, StockSessions
from shelfwise.platform.concurrency import bounded_gather
from shelfwise.platform.unit_of_work import UnitOfWork

# A sanity bound: far above any real stock count, and it keeps typos like 10000000 out.
MAX_STOCK_QUANTITY = 1_000_000
# A stock report holds at most this many database connections at once, whatever its size,
# so it can never drain the pool that requests need.
MAX_CONCURRENT_STOCK_READS = 4
STOCK_READ_TIMEOUT_SECONDS = 5.0


class InventoryService:
    """Records and reports how many copies of each catalog book are on hand."""

    def __init__(self, books: BookRepository, stock: StockRepository, uow: UnitOfWork) -> None:
        self._books = books
        self._stock = stock
        self._uow = uow

    async def set_stock(self, book_id: int, quantity: int) -> None:
        """Record a stock count for a book (e.g. after a delivery or a stocktake)."""
        if not 0 <= quantity <= MAX_STOCK_QUANTITY:
            raise InvalidQuantityError(
                f"A stock quantity is between 0 and {MAX_STOCK_QUANTITY}, got {quantity}."
            )
        async with self._uow:
            await self._require_book(book_id)
            await self._stock.set_quantity(book_id, quantity)
            await self._uow.commit()

    async def get_stock(self, book_id: int) -> int:
        """Return the copies on hand (0 if the book was never stocked)."""
        await self._require_book(book_id)
        return await self._stock.quantity(book_id)

    async def _require_book(self, book_id: int) -> None:
        if await self._books.get(book_id) is None:
            raise BookNotFoundError(book_id)


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
