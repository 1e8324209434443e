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

    async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
        on_hand = self._quantities.get(book_id, 0)
        if quantity > on_hand:
            return False
        self._quantities[book_id] = on_hand - quantity
        return True


def _conforms(repository: InMemoryStockRepository) -> StockRepository:
    return repository
