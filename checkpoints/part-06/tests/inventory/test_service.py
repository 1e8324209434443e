"""Unit tests of the inventory service, using in-memory fakes."""

from decimal import Decimal

import pytest

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.models import Book
from shelfwise.inventory.errors import InvalidQuantityError
from shelfwise.inventory.service import MAX_STOCK_QUANTITY, InventoryService
from tests.catalog.fakes import InMemoryBookRepository
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
    await books.add(
        Book(
            isbn="9780306406157",
            title="A Wizard of Earthsea",
            author_id=1,
            price_amount=Decimal("9.99"),
            price_currency="USD",
        )
    )
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
