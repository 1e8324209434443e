"""The anchors that skip the app: the same database work without FastAPI (bare ORM read) and
without FastAPI or SQLAlchemy (raw asyncpg order)."""

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import URL, select
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.ext.automap import automap_base
from sqlalchemy.orm import joinedload

from bench.load import Call
from bench.workload import COPIES_PER_LINE, LINES_PER_ORDER, Workload

# The app's engine uses SQLAlchemy's default pool: 5 connections plus 10 overflow. The raw
# anchor gets as many, so neither side wins by holding more connections.
APP_POOL_LIMIT = 15
# The bulk discount starts at 10 copies; an order of LINES_PER_ORDER * COPIES_PER_LINE gets none.
NO_DISCOUNT = Decimal("0.00")
assert LINES_PER_ORDER * COPIES_PER_LINE < 10


@asynccontextmanager
async def bare_orm_read(url: URL, workload: Workload) -> AsyncIterator[Call]:
    """What ``GET /books/{id}`` asks of the ORM, and nothing else: a session per call, one
    SELECT of the book joined to its author.

    The models are reflected from the database rather than imported from the app, so the anchor
    is the same for every part and adds none of the app's own session hooks.
    """
    engine = create_async_engine(url)
    try:
        models: Any = automap_base()
        async with engine.connect() as connection:
            await connection.run_sync(
                lambda sync: models.prepare(
                    autoload_with=sync, reflection_options={"only": ["books", "authors"]}
                )
            )
        # From part 9 a book refers to its tenant and, through (tenant_id, author_id), to its
        # author: automap's relationships from both keys overlap on tenant_id. A read never
        # writes through them, so SQLAlchemy's warning about it is noise here.
        warnings.filterwarnings(
            "ignore", message="relationship .* will copy column", category=SAWarning
        )
        book = models.classes.books
        # automap names a many-to-one relationship after the table it refers to.
        query = select(book).options(joinedload(book.authors))
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async def read(worker: int) -> str | None:
            async with sessions() as session:
                found = await session.scalar(query.where(book.id == workload.book(worker)))
            return None if found is not None else "not found"

        yield read
    finally:
        await engine.dispose()


class OutOfStockError(Exception):
    """The conditional decrement matched no row."""


@asynccontextmanager
async def raw_order(url: URL, workload: Workload) -> AsyncIterator[Call]:
    """The writes of ``POST /orders`` in one asyncpg transaction: read the books' prices,
    decrement each stock row only if enough is left (in book id order, as the app does, so
    concurrent orders cannot deadlock), insert the order, insert its items.

    From part 9 on, orders and their items carry ``tenant_id`` and row-level security reads the
    tenant from ``app.tenant_id``; both are done here too when the schema has the column.
    """
    pool = await asyncpg.create_pool(
        url.set(drivername="postgresql").render_as_string(hide_password=False),
        min_size=1,
        max_size=APP_POOL_LIMIT,
    )
    try:
        async with pool.acquire() as connection:
            scoped = {
                row["table_name"]
                for row in await connection.fetch(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND column_name = 'tenant_id' "
                    "AND table_name IN ('orders', 'order_items')"
                )
            }
            # From part 16 on, an order is a versioned saga.
            saga = await connection.fetchval(
                "SELECT count(*) = 2 FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'orders' "
                "AND column_name IN ('version', 'updated_at')"
            )
        saga_columns = ["version", "updated_at"] if saga else []
        insert_order = _insert(
            "orders",
            ["status", "total_amount", "total_currency", "discount_percent", *saga_columns],
            tenant_scoped="orders" in scoped,
            returning="id",
        )
        insert_item = _insert(
            "order_items",
            [
                "order_id",
                "book_id",
                "quantity",
                "unit_price_amount",
                "unit_price_currency",
                "line_total_amount",
            ],
            tenant_scoped="order_items" in scoped,
        )

        async def place(worker: int) -> str | None:
            tenant = workload.tenant(worker)
            book_ids = sorted(workload.order_books(worker))
            # The tenant's id goes last, where _insert puts its column.
            order_tenant = [tenant.database_id] if "orders" in scoped else []
            item_tenant = [tenant.database_id] if "order_items" in scoped else []
            async with pool.acquire() as connection, connection.transaction():
                if scoped:
                    await connection.execute(
                        "SELECT set_config('app.tenant_id', $1, true)", str(tenant.database_id)
                    )
                prices = await connection.fetch(
                    "SELECT id, price_amount, price_currency FROM books WHERE id = ANY($1::int[])",
                    book_ids,
                )
                if len(prices) != len(book_ids):
                    return "book not found"
                for book_id in book_ids:
                    remaining = await connection.fetchval(
                        "UPDATE stock SET quantity = quantity - $2 "
                        "WHERE book_id = $1 AND quantity >= $2 RETURNING quantity",
                        book_id,
                        COPIES_PER_LINE,
                    )
                    if remaining is None:
                        raise OutOfStockError(book_id)
                total = sum(row["price_amount"] * COPIES_PER_LINE for row in prices)
                order_id = await connection.fetchval(
                    insert_order,
                    # Confirmed: a pending order would be taken up by the app's saga upkeep, and its
                    # steps would compete with this anchor for the same rows.
                    "confirmed" if saga else "placed",
                    total,
                    prices[0]["price_currency"],
                    NO_DISCOUNT,
                    *([1, datetime.now(UTC)] if saga else []),
                    *order_tenant,
                )
                await connection.executemany(
                    insert_item,
                    [
                        (
                            order_id,
                            row["id"],
                            COPIES_PER_LINE,
                            row["price_amount"],
                            row["price_currency"],
                            row["price_amount"] * COPIES_PER_LINE,
                            *item_tenant,
                        )
                        for row in prices
                    ],
                )
            return None

        yield place
    finally:
        await pool.close()


def _insert(
    table: str, columns: list[str], *, tenant_scoped: bool, returning: str | None = None
) -> str:
    if tenant_scoped:
        columns = [*columns, "tenant_id"]
    placeholders = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    return f"{statement} RETURNING {returning}" if returning else statement
