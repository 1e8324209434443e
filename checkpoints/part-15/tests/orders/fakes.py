"""In-memory stand-in for the orders port."""

from shelfwise.orders.models import Order
from shelfwise.orders.ports import OrderRepository


class InMemoryOrderRepository:
    """Orders in a dict keyed by id; ids are assigned 1, 2, 3, ... like the database."""

    def __init__(self) -> None:
        self._orders: dict[int, Order] = {}

    async def add(self, order: Order) -> Order:
        order.id = len(self._orders) + 1
        for item in order.items:
            item.order_id = order.id
        self._orders[order.id] = order
        return order

    async def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)


def _conforms(repository: InMemoryOrderRepository) -> OrderRepository:
    return repository
