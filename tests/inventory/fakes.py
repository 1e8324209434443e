"""In-memory stand-in for the inventory port."""

from shelfwise.inventory.models import Stock
from shelfwise.inventory.ports import StockLevel, StockRepository


class InMemoryStockRepository:
    """Stock rows in a dict keyed by book id; a missing key means no copies, version 0.

    One caller at a time: the races that versions guard against are the database tests'.
    """

    def __init__(self) -> None:
        self._rows: dict[int, Stock] = {}

    async def quantity(self, book_id: int) -> int:
        return (await self.level(book_id)).quantity

    async def level(self, book_id: int) -> StockLevel:
        row = self._rows.get(book_id)
        if row is None:
            return StockLevel(0, 0)
        return StockLevel(row.quantity, row.version, row.reserved or 0)

    async def get(self, book_id: int) -> Stock | None:
        return self._rows.get(book_id)

    async def set_quantity(
        self, book_id: int, on_shelf: int, *, version: int | None = None
    ) -> StockLevel | None:
        current = await self.level(book_id)
        if (version is not None and version != current.version) or on_shelf < current.reserved:
            return None
        return self._store(book_id, on_shelf - current.reserved, current.reserved)

    async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
        current = await self.level(book_id)
        if quantity > current.quantity:
            return False
        self._store(book_id, current.quantity - quantity, current.reserved + quantity)
        return True

    async def release(self, book_id: int, quantity: int) -> None:
        current = await self.level(book_id)
        self._store(book_id, current.quantity + quantity, current.reserved - quantity)

    async def ship(self, book_id: int, quantity: int) -> None:
        current = await self.level(book_id)
        self._store(book_id, current.quantity, current.reserved - quantity)

    def _store(self, book_id: int, quantity: int, reserved: int) -> StockLevel:
        version = self._rows[book_id].version + 1 if book_id in self._rows else 1
        self._rows[book_id] = Stock(
            book_id=book_id, quantity=quantity, reserved=reserved, version=version
        )
        return StockLevel(quantity, version, reserved)


def _conforms(repository: InMemoryStockRepository) -> StockRepository:
    return repository
