"""Unit tests of quoting and placing orders, using in-memory fakes."""

from decimal import Decimal

import pytest

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.inventory.errors import InsufficientStockError, InvalidQuantityError
from shelfwise.orders.errors import InvalidQuoteError, OrderNotFoundError
from shelfwise.orders.models import OrderStatus
from shelfwise.orders.service import OrderService, QuoteLine
from shelfwise.platform.money import CurrencyMismatchError, Money
from tests.catalog.fakes import InMemoryBookRepository
from tests.factories import a_book
from tests.inventory.fakes import InMemoryStockRepository
from tests.orders.fakes import InMemoryOrderRepository
from tests.platform.fakes import FakeUnitOfWork

EARTHSEA, KINDRED, EURO_BOOK = 1, 2, 3


@pytest.fixture
def stock() -> InMemoryStockRepository:
    return InMemoryStockRepository()


@pytest.fixture
def stored_orders() -> InMemoryOrderRepository:
    return InMemoryOrderRepository()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
async def books(stock: InMemoryStockRepository) -> InMemoryBookRepository:
    """Three books, each with 100 copies on hand: two priced in USD, one in EUR."""
    books = InMemoryBookRepository()
    for isbn, title, price, currency in [
        ("9780306406157", "A Wizard of Earthsea", "12.50", "USD"),
        ("9780807083697", "Kindred", "8.99", "USD"),
        ("9780441478125", "Le Nom de la rose", "20.00", "EUR"),
    ]:
        book = await books.add(
            a_book(isbn=isbn, title=title, price_amount=Decimal(price), price_currency=currency)
        )
        await stock.set_quantity(book.id, 100)
    return books


@pytest.fixture
def orders(
    books: InMemoryBookRepository,
    stock: InMemoryStockRepository,
    stored_orders: InMemoryOrderRepository,
    uow: FakeUnitOfWork,
) -> OrderService:
    return OrderService(books, stock, stored_orders, uow)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


async def test_a_small_quote_is_priced_at_list_price(orders: OrderService) -> None:
    quote = await orders.quote([QuoteLine(book_id=EARTHSEA, quantity=2)])

    (line,) = quote.lines
    assert (line.title, line.quantity) == ("A Wizard of Earthsea", 2)
    assert line.unit_price == usd("12.50")
    assert line.line_total == usd("25.00")
    assert quote.discount_percent == Decimal(0)
    assert quote.subtotal == quote.total == usd("25.00")
    assert quote.discount == usd("0.00")


async def test_copies_across_lines_count_towards_the_bulk_discount(orders: OrderService) -> None:
    quote = await orders.quote(
        [QuoteLine(book_id=EARTHSEA, quantity=6), QuoteLine(book_id=KINDRED, quantity=4)]
    )

    assert [line.line_total for line in quote.lines] == [usd("75.00"), usd("35.96")]
    assert quote.subtotal == usd("110.96")
    assert quote.discount_percent == Decimal(5)
    assert quote.total == usd("105.41")  # 105.412 rounded to the cent
    assert quote.discount == usd("5.55")  # so that discount + total == subtotal exactly


async def test_fifty_copies_earn_ten_percent(orders: OrderService) -> None:
    quote = await orders.quote([QuoteLine(book_id=KINDRED, quantity=50)])

    assert quote.subtotal == usd("449.50")
    assert quote.discount_percent == Decimal(10)
    assert quote.total == usd("404.55")


@pytest.mark.parametrize("quantity", [0, -3])
async def test_each_line_needs_at_least_one_copy(orders: OrderService, quantity: int) -> None:
    with pytest.raises(InvalidQuantityError):
        await orders.quote([QuoteLine(book_id=EARTHSEA, quantity=quantity)])


async def test_an_unknown_book_is_reported(orders: OrderService) -> None:
    with pytest.raises(BookNotFoundError) as raised:
        await orders.quote([QuoteLine(book_id=EARTHSEA, quantity=1), QuoteLine(99, 1)])

    assert raised.value.book_id == 99


async def test_requesting_more_than_is_on_hand_is_a_conflict(orders: OrderService) -> None:
    with pytest.raises(InsufficientStockError) as raised:
        await orders.quote([QuoteLine(book_id=KINDRED, quantity=101)])

    error = raised.value
    assert (error.code, error.book_id, error.requested, error.available) == (
        "insufficient_stock",
        KINDRED,
        101,
        100,
    )


async def test_all_of_the_stock_may_be_quoted(orders: OrderService) -> None:
    quote = await orders.quote([QuoteLine(book_id=KINDRED, quantity=100)])

    assert quote.lines[0].quantity == 100


async def test_mixed_currencies_cannot_be_quoted_together(orders: OrderService) -> None:
    with pytest.raises(CurrencyMismatchError):
        await orders.quote([QuoteLine(EARTHSEA, 1), QuoteLine(EURO_BOOK, 1)])


async def test_an_empty_quote_is_rejected(orders: OrderService) -> None:
    with pytest.raises(InvalidQuoteError, match="at least one line"):
        await orders.quote([])


async def test_a_book_may_appear_on_only_one_line(orders: OrderService) -> None:
    with pytest.raises(InvalidQuoteError, match="only one line"):
        await orders.quote([QuoteLine(EARTHSEA, 1), QuoteLine(EARTHSEA, 2)])


async def test_placing_an_order_takes_the_copies_and_stores_the_priced_order(
    orders: OrderService,
    stock: InMemoryStockRepository,
    stored_orders: InMemoryOrderRepository,
    uow: FakeUnitOfWork,
) -> None:
    order = await orders.place_order(
        [QuoteLine(book_id=EARTHSEA, quantity=6), QuoteLine(book_id=KINDRED, quantity=4)]
    )

    assert order.status == OrderStatus.PENDING
    assert [(item.book_id, item.quantity) for item in order.items] == [(EARTHSEA, 6), (KINDRED, 4)]
    assert [item.unit_price for item in order.items] == [usd("12.50"), usd("8.99")]
    assert [item.line_total for item in order.items] == [usd("75.00"), usd("35.96")]
    assert order.discount_percent == Decimal(5)
    assert order.total == usd("105.41")  # exactly what the quote says
    assert (await stock.quantity(EARTHSEA), await stock.quantity(KINDRED)) == (94, 96)
    assert await stored_orders.get(order.id) is order
    assert (uow.commits, uow.rollbacks) == (1, 0)


async def test_an_order_totals_exactly_what_its_quote_does(orders: OrderService) -> None:
    lines = [QuoteLine(book_id=KINDRED, quantity=50)]

    quote = await orders.quote(lines)
    order = await orders.place_order(lines)

    assert (order.total, order.discount_percent) == (quote.total, quote.discount_percent)


async def test_the_whole_stock_can_be_ordered(
    orders: OrderService, stock: InMemoryStockRepository
) -> None:
    await orders.place_order([QuoteLine(book_id=KINDRED, quantity=100)])

    assert await stock.quantity(KINDRED) == 0


async def test_an_order_one_line_cannot_fill_changes_nothing(
    orders: OrderService,
    stock: InMemoryStockRepository,
    stored_orders: InMemoryOrderRepository,
    uow: FakeUnitOfWork,
) -> None:
    with pytest.raises(InsufficientStockError) as raised:
        await orders.place_order(
            [QuoteLine(book_id=EARTHSEA, quantity=5), QuoteLine(book_id=KINDRED, quantity=101)]
        )

    assert raised.value.book_id == KINDRED
    assert (await stock.quantity(EARTHSEA), await stock.quantity(KINDRED)) == (100, 100)
    assert await stored_orders.get(1) is None
    assert (uow.commits, uow.rollbacks) == (0, 1)


async def test_stock_taken_after_the_quote_fails_the_order_without_committing(
    books: InMemoryBookRepository, uow: FakeUnitOfWork
) -> None:
    class StockThatEmptiesAfterQuoting(InMemoryStockRepository):
        """Reports plenty of copies, then refuses to hand them out: a concurrent order won."""

        async def decrement_if_available(self, book_id: int, quantity: int) -> bool:
            return False

    racing = StockThatEmptiesAfterQuoting()
    await racing.set_quantity(EARTHSEA, 100)
    orders = OrderService(books, racing, InMemoryOrderRepository(), uow)

    with pytest.raises(InsufficientStockError):
        await orders.place_order([QuoteLine(book_id=EARTHSEA, quantity=1)])

    # The real unit of work now undoes any line already taken (see the SQLite test).
    assert (uow.commits, uow.rollbacks) == (0, 1)


@pytest.mark.parametrize("quantity", [0, -1])
async def test_an_order_line_needs_at_least_one_copy(
    orders: OrderService, stock: InMemoryStockRepository, quantity: int
) -> None:
    with pytest.raises(InvalidQuantityError):
        await orders.place_order([QuoteLine(book_id=EARTHSEA, quantity=quantity)])

    assert await stock.quantity(EARTHSEA) == 100


async def test_get_order_returns_a_placed_order_or_raises(orders: OrderService) -> None:
    placed = await orders.place_order([QuoteLine(book_id=EARTHSEA, quantity=1)])

    assert await orders.get_order(placed.id) is placed
    with pytest.raises(OrderNotFoundError, match="Order 99 does not exist"):
        await orders.get_order(99)
