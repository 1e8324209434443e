"""The SQL stock repository, against a real (SQLite) database."""

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.catalog.models import Book
from shelfwise.inventory.repository import SqlStockRepository
from tests.factories import a_book


@pytest.fixture
async def book(session: AsyncSession) -> Book:
    book = a_book()
    session.add(book)
    await session.flush()
    return book


async def test_a_book_without_a_stock_row_has_zero_copies(
    session: AsyncSession, book: Book
) -> None:
    assert await SqlStockRepository(session).quantity(book.id) == 0


async def test_set_quantity_inserts_then_updates(session: AsyncSession, book: Book) -> None:
    stock = SqlStockRepository(session)

    await stock.set_quantity(book.id, 7)
    await session.commit()
    session.expunge_all()
    await stock.set_quantity(book.id, 2)
    await session.commit()

    assert await stock.quantity(book.id) == 2


async def test_the_database_refuses_negative_stock(session: AsyncSession, book: Book) -> None:
    with pytest.raises(IntegrityError, match="quantity_not_negative"):
        await SqlStockRepository(session).set_quantity(book.id, -1)


async def test_the_database_refuses_stock_for_a_missing_book(session: AsyncSession) -> None:
    # Proves that foreign keys are enforced, which SQLite does not do by default.
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        await SqlStockRepository(session).set_quantity(999, 1)


async def test_decrement_takes_copies_when_enough_are_on_hand(
    session: AsyncSession, book: Book
) -> None:
    stock = SqlStockRepository(session)
    await stock.set_quantity(book.id, 5)

    assert await stock.decrement_if_available(book.id, 3) is True
    assert await stock.decrement_if_available(book.id, 2) is True  # the last copies
    assert await stock.quantity(book.id) == 0


async def test_decrement_refuses_more_than_is_on_hand_and_changes_nothing(
    session: AsyncSession, book: Book
) -> None:
    stock = SqlStockRepository(session)
    await stock.set_quantity(book.id, 2)

    assert await stock.decrement_if_available(book.id, 3) is False
    assert await stock.quantity(book.id) == 2


async def test_decrement_of_a_never_stocked_book_fails(session: AsyncSession, book: Book) -> None:
    assert await SqlStockRepository(session).decrement_if_available(book.id, 1) is False
