"""SQLAlchemy adapter for the inventory port."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shelfwise.inventory.models import Stock
from shelfwise.tenancy.context import current_tenant_id

if TYPE_CHECKING:
    from shelfwise.inventory.ports import StockRepository, StockSessions


class SqlStockRepository:
    """Stock levels in a relational database; flushes but never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def quantity(self, book_id: int) -> int:
        on_hand = await self._session.scalar(select(Stock.quantity).where(Stock.book_id == book_id))
        return on_hand or 0

    async def set_quantity(self, book_id: int, quantity: int) -> None:
        # One upsert, not get-then-add: two first counts of the same book would both find no
        # row and both insert, and the second would fail on the primary key.
        dialect = self._session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        # A Core insert bypasses the ORM's stamping, so it names the tenant itself.
        statement = insert(Stock).values(
            tenant_id=current_tenant_id(), book_id=book_id, quantity=quantity
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[Stock.book_id], set_={"quantity": statement.excluded.quantity}
            )
        )

    async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
        # One conditional UPDATE instead of read-then-write: the database checks and changes the
        # row under its own row lock, so no other transaction can slip in between.
        remaining = await self._session.scalar(
            update(Stock)
            .where(Stock.book_id == book_id, Stock.quantity >= quantity)
            .values(quantity=Stock.quantity - quantity)
            .returning(Stock.quantity)
        )
        return remaining is not None


# Opens a new session: a session factory, or ``Database.session`` with its routing and breaker.
OpenSession = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class SqlStockSessions:
    """Stock repositories, each on a new session that ``open_session`` opens."""

    def __init__(self, open_session: OpenSession) -> None:
        self._open_session = open_session

    @asynccontextmanager
    async def open(self) -> AsyncIterator[SqlStockRepository]:
        async with self._open_session() as session:
            yield SqlStockRepository(session)


if TYPE_CHECKING:
    # mypy proves the adapters satisfy the ports; nothing runs at runtime.
    def _conforms(
        session: AsyncSession, session_factory: async_sessionmaker[AsyncSession]
    ) -> tuple[StockRepository, StockSessions]:
        return SqlStockRepository(session), SqlStockSessions(session_factory)
