"""SQLAlchemy adapter for the inventory port."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shelfwise.inventory.models import Stock
from shelfwise.inventory.ports import StockLevel
from shelfwise.tenancy.context import current_tenant_id

if TYPE_CHECKING:
    from shelfwise.inventory.ports import StockRepository, StockSessions


class SqlStockRepository:
    """Stock levels in a relational database; flushes but never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def quantity(self, book_id: int) -> int:
        return (await self.level(book_id)).quantity

    async def level(self, book_id: int) -> StockLevel:
        row = (
            await self._session.execute(
                select(Stock.quantity, Stock.version, Stock.reserved).where(
                    Stock.book_id == book_id
                )
            )
        ).one_or_none()
        return StockLevel(0, 0) if row is None else StockLevel(*row)

    async def get(self, book_id: int) -> Stock | None:
        return await self._session.get(Stock, book_id)

    async def set_quantity(
        self, book_id: int, on_shelf: int, *, version: int | None = None
    ) -> StockLevel | None:
        # One upsert, not get-then-add: two first counts of the same book would both find no
        # row and both insert, and the second would fail on the primary key.
        dialect = self._session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        # A Core insert bypasses the ORM's stamping, so it names the tenant itself.
        statement = insert(Stock).values(
            tenant_id=current_tenant_id(), book_id=book_id, quantity=on_shelf, version=1
        )
        if version == 0:  # only if never stocked
            upsert = statement.on_conflict_do_nothing(index_elements=[Stock.book_id])
        else:
            # The reserved copies are on the shelf too: what can be ordered is the rest.
            still_reserved = Stock.reserved <= statement.excluded.quantity
            upsert = statement.on_conflict_do_update(
                index_elements=[Stock.book_id],
                set_={
                    "quantity": statement.excluded.quantity - Stock.reserved,
                    "version": Stock.version + 1,
                },
                # With a version, the existing row changes only if it is still at it.
                where=still_reserved
                if version is None
                else still_reserved & (Stock.version == version),
            )
        written = (
            await self._session.execute(
                upsert.returning(Stock.quantity, Stock.version, Stock.reserved)
            )
        ).one_or_none()
        return None if written is None else StockLevel(*written)

    async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
        # One conditional UPDATE instead of read-then-write: the database checks and changes the
        # row under its own row lock, so no other transaction can slip in between.
        remaining = await self._session.scalar(
            update(Stock)
            .where(Stock.book_id == book_id, Stock.quantity >= quantity)
            .values(
                quantity=Stock.quantity - quantity,
                reserved=Stock.reserved + quantity,
                version=Stock.version + 1,
            )
            .returning(Stock.quantity)
        )
        return remaining is not None

    async def release(self, book_id: int, quantity: int) -> None:
        await self._session.execute(
            update(Stock)
            .where(Stock.book_id == book_id)
            .values(
                quantity=Stock.quantity + quantity,
                reserved=Stock.reserved - quantity,
                version=Stock.version + 1,
            )
        )

    async def ship(self, book_id: int, quantity: int) -> None:
        await self._session.execute(
            update(Stock)
            .where(Stock.book_id == book_id)
            .values(reserved=Stock.reserved - quantity, version=Stock.version + 1)
        )


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
