"""SQLAlchemy adapter for the orders port."""

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shelfwise.orders.models import Order

if TYPE_CHECKING:
    from shelfwise.orders.ports import OrderRepository


class SqlOrderRepository:
    """Orders in a relational database; flushes but never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, order: Order) -> Order:
        self._session.add(order)  # the items cascade with it
        await self._session.flush()  # assigns the ids
        return order

    async def get(self, order_id: int) -> Order | None:
        # selectinload: one extra query for all items, instead of repeating order columns per
        # item as a join would.
        return await self._session.scalar(
            select(Order).options(selectinload(Order.items)).where(Order.id == order_id)
        )


if TYPE_CHECKING:
    # mypy proves the adapter satisfies the port; nothing runs at runtime.
    def _conforms(session: AsyncSession) -> OrderRepository:
        return SqlOrderRepository(session)
