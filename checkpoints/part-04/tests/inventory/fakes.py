"""In-memory stand-in for the inventory port."""

from shelfwise.inventory.ports import StockRepository


class InMemoryStockRepository:
    """Stock levels in a dict keyed by book id; a missing key means no copies."""

    def __init__(self) -> None:
        self._quantities: dict[int, int] = {}

    async def quantity(self, book_id: int) -> int:
        return self._quantities.get(book_id, 0)

    async def set_quantity(self, book_id: int, quantity: int) -> None:
        self._quantities[book_id] = quantity


def _conforms(repository: InMemoryStockRepository) -> StockRepository:
    return repository
