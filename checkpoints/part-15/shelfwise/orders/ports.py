"""What the orders feature needs from storage."""

from typing import Protocol

from shelfwise.orders.models import Order


class OrderRepository(Protocol):
    """Stores and finds orders."""

    async def add(self, order: Order) -> Order:
        """Store a new order with its items and return it with ids assigned."""
        ...

    async def get(self, order_id: int) -> Order | None:
        """Return the order with this id and its items loaded, or ``None``."""
        ...


class OrderEvents(Protocol):
    """Hears about orders once they are stored: what must follow runs outside the request."""

    async def order_placed(self, order: Order) -> None:
        """``order`` was committed. Must not raise: the order stands whatever happens here."""
        ...
