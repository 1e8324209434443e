"""Placing orders through the SQL adapters and a real unit of work."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shelfwise.catalog.repository import SqlBookRepository
from shelfwise.inventory.errors import InsufficientStockError
from shelfwise.inventory.ports import StockRepository
from shelfwise.inventory.repository import SqlStockRepository
from shelfwise.orders.models import Order
from shelfwise.orders.repository import SqlOrderRepository
from shelfwise.orders.service import OrderService, QuoteLine
from shelfwise.platform.db import create_session_factory
from shelfwise.platform.unit_of_work import SqlUnitOfWork
from tests.factories import a_book, an_author


class StockThatLooksPlentiful(SqlStockRepository):
    """The real stock, except that reads report plenty of copies.

    It plays a concurrent order that takes the copies between our quote and our decrement: the
    quote passes, and only the atomic decrement notices.
    """

    async def quantity(self, book_id: int) -> int:
        return 1_000


@pytest.fixture
async def two_books(session: AsyncSession) -> tuple[int, int]:
    """Two books: ten copies of the first, one copy of the second."""
    author = an_author()
    first, second = a_book(1, author=author), a_book(2, author=author)
    session.add_all([first, second])
    await session.flush()
    stock = SqlStockRepository(session)
    await stock.set_quantity(first.id, 10)
    await stock.set_quantity(second.id, 1)
    await session.commit()
    return first.id, second.id


async def read_in_a_new_session(engine: AsyncEngine) -> tuple[list[int], int]:
    """Stock levels by book id, and the number of orders, as another connection sees them."""
    async with create_session_factory(engine)() as fresh:
        stock = SqlStockRepository(fresh)
        quantities = [await stock.quantity(book_id) for book_id in (1, 2)]
        orders = await fresh.scalar(select(func.count()).select_from(Order)) or 0
        return quantities, orders


def order_service(session: AsyncSession, stock: StockRepository | None = None) -> OrderService:
    return OrderService(
        SqlBookRepository(session),
        stock or SqlStockRepository(session),
        SqlOrderRepository(session),
        SqlUnitOfWork(session),
    )


async def test_a_placed_order_is_committed_with_the_stock_it_took(
    engine: AsyncEngine, session: AsyncSession, two_books: tuple[int, int]
) -> None:
    first, second = two_books

    order = await order_service(session).place_order(
        [QuoteLine(book_id=first, quantity=4), QuoteLine(book_id=second, quantity=1)]
    )

    assert order.id == 1
    assert await read_in_a_new_session(engine) == ([6, 0], 1)


async def test_a_line_lost_to_a_concurrent_order_undoes_the_lines_already_taken(
    engine: AsyncEngine, session: AsyncSession, two_books: tuple[int, int]
) -> None:
    first, second = two_books
    racing = order_service(session, StockThatLooksPlentiful(session))

    with pytest.raises(InsufficientStockError) as raised:
        # The first book is taken before the second one fails.
        await racing.place_order(
            [QuoteLine(book_id=first, quantity=4), QuoteLine(book_id=second, quantity=2)]
        )

    assert raised.value.book_id == second
    assert await read_in_a_new_session(engine) == ([10, 1], 0)
