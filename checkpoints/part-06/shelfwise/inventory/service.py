"""Inventory use cases."""

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.ports import BookRepository
from shelfwise.inventory.errors import InvalidQuantityError
from shelfwise.inventory.ports import StockRepository
from shelfwise.platform.unit_of_work import UnitOfWork

# A sanity bound: far above any real stock count, and it keeps typos like 10000000 out.
MAX_STOCK_QUANTITY = 1_000_000


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
