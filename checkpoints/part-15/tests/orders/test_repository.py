"""The SQL order repository, against a real (SQLite) database."""

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.catalog.models import Book
from shelfwise.orders.models import Order, OrderItem, OrderStatus
from shelfwise.orders.repository import SqlOrderRepository
from shelfwise.platform.money import Money
from tests.factories import a_book


@pytest.fixture
async def book(session: AsyncSession) -> Book:
    book = a_book()
    session.add(book)
    await session.flush()
    return book


def an_order(book_id: int, quantity: int = 2) -> Order:
    return Order(
        status=OrderStatus.PLACED,
        total_amount=Decimal("25.00"),
        total_currency="USD",
        discount_percent=Decimal(0),
        items=[
            OrderItem(
                book_id=book_id,
                quantity=quantity,
                unit_price_amount=Decimal("12.50"),
                unit_price_currency="USD",
                line_total_amount=Decimal("12.50") * quantity,
            )
        ],
    )


async def test_an_added_order_round_trips_with_its_items(session: AsyncSession, book: Book) -> None:
    orders = SqlOrderRepository(session)
    order = await orders.add(an_order(book.id))
    await session.commit()
    session.expunge_all()  # the next read really hits the database

    stored = await orders.get(order.id)

    assert stored is not None
    assert stored.status is OrderStatus.PLACED
    assert stored.total == Money(Decimal("25.00"), "USD")
    (item,) = stored.items
    assert (item.order_id, item.book_id, item.quantity) == (order.id, book.id, 2)
    assert item.unit_price == Money(Decimal("12.50"), "USD")
    assert item.line_total == Money(Decimal("25.00"), "USD")


async def test_get_returns_none_for_an_unknown_id(session: AsyncSession) -> None:
    assert await SqlOrderRepository(session).get(999) is None


async def test_items_loaded_without_the_repository_raise(session: AsyncSession, book: Book) -> None:
    await SqlOrderRepository(session).add(an_order(book.id))
    await session.commit()
    session.expunge_all()

    order = await session.scalar(select(Order))

    assert order is not None
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = order.items


async def test_the_database_refuses_an_item_without_copies(
    session: AsyncSession, book: Book
) -> None:
    with pytest.raises(IntegrityError, match="quantity_positive"):
        await SqlOrderRepository(session).add(an_order(book.id, quantity=0))


async def test_the_database_refuses_an_item_for_a_missing_book(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        await SqlOrderRepository(session).add(an_order(book_id=999))
