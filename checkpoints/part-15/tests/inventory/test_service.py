"""Unit tests of the inventory service, using in-memory fakes."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.inventory.errors import InvalidQuantityError
from shelfwise.inventory.ports import StockSessions
from shelfwise.inventory.service import MAX_STOCK_QUANTITY, InventoryService, StockReport
from tests.catalog.fakes import InMemoryBookRepository
from tests.factories import a_book
from tests.inventory.fakes import InMemoryStockRepository
from tests.platform.fakes import FakeUnitOfWork


@pytest.fixture
def stock() -> InMemoryStockRepository:
    return InMemoryStockRepository()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
async def inventory(stock: InMemoryStockRepository, uow: FakeUnitOfWork) -> InventoryService:
    """An inventory whose catalog holds exactly one book, with id 1."""
    books = InMemoryBookRepository()
    await books.add(a_book())
    return InventoryService(books, stock, uow)


async def test_a_book_never_stocked_has_zero_copies(inventory: InventoryService) -> None:
    assert await inventory.get_stock(1) == 0


async def test_set_stock_records_the_quantity_and_commits(
    inventory: InventoryService, uow: FakeUnitOfWork
) -> None:
    await inventory.set_stock(1, 12)

    assert await inventory.get_stock(1) == 12
    assert uow.commits == 1


async def test_set_stock_replaces_the_previous_count(inventory: InventoryService) -> None:
    await inventory.set_stock(1, 12)
    await inventory.set_stock(1, 3)

    assert await inventory.get_stock(1) == 3


@pytest.mark.parametrize("quantity", [0, MAX_STOCK_QUANTITY])
async def test_quantities_at_the_edges_are_accepted(
    inventory: InventoryService, quantity: int
) -> None:
    await inventory.set_stock(1, quantity)

    assert await inventory.get_stock(1) == quantity


@pytest.mark.parametrize("quantity", [-1, MAX_STOCK_QUANTITY + 1])
async def test_quantities_out_of_range_are_rejected_and_nothing_changes(
    inventory: InventoryService, uow: FakeUnitOfWork, quantity: int
) -> None:
    await inventory.set_stock(1, 5)

    with pytest.raises(InvalidQuantityError) as raised:
        await inventory.set_stock(1, quantity)

    assert raised.value.code == "invalid_quantity"
    assert await inventory.get_stock(1) == 5
    assert uow.commits == 1


async def test_unknown_books_have_no_stock_to_read_or_set(
    inventory: InventoryService, stock: InMemoryStockRepository, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(BookNotFoundError):
        await inventory.get_stock(99)
    with pytest.raises(BookNotFoundError):
        await inventory.set_stock(99, 5)

    assert await stock.quantity(99) == 0
    assert (uow.commits, uow.rollbacks) == (0, 1)


class CountingStockSessions:
    """Hands out the same fake stock on "sessions" it counts, yielding to other tasks on open."""

    def __init__(self, stock: InMemoryStockRepository) -> None:
        self._stock = stock
        self.opened = 0
        self.open_now = 0
        self.most_open = 0

    @asynccontextmanager
    async def open(self) -> AsyncIterator[InMemoryStockRepository]:
        self.opened += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await asyncio.sleep(0)  # a real session would wait for a connection here
            yield self._stock
        finally:
            self.open_now -= 1


def _conforms_to_stock_sessions(sessions: CountingStockSessions) -> StockSessions:
    return sessions


async def test_a_stock_report_reads_each_book_once_in_a_session_of_its_own(
    stock: InMemoryStockRepository,
) -> None:
    for book_id in range(1, 11):
        await stock.set_quantity(book_id, book_id * 2)
    sessions = CountingStockSessions(stock)

    levels = await StockReport(sessions, concurrency=3).levels([3, 1, 3, *range(1, 11), 99])

    assert list(levels.items())[:3] == [(3, 6), (1, 2), (2, 4)]
    assert levels[10] == 20
    assert levels[99] == 0  # unknown, like never stocked
    assert sessions.opened == len(levels) == 11
    assert sessions.most_open == 3
