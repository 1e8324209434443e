"""Unit tests of quoting, using in-memory fakes."""

from decimal import Decimal

import pytest

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.models import Book
from shelfwise.inventory.errors import InsufficientStockError, InvalidQuantityError
from shelfwise.orders.errors import InvalidQuoteError
from shelfwise.orders.service import OrderService, QuoteLine
from shelfwise.platform.money import CurrencyMismatchError, Money
from tests.catalog.fakes import InMemoryBookRepository
from tests.inventory.fakes import InMemoryStockRepository

EARTHSEA, KINDRED, EURO_BOOK = 1, 2, 3


@pytest.fixture
async def orders() -> OrderService:
    """Three books, each with 100 copies on hand: two priced in USD, one in EUR."""
    books = InMemoryBookRepository()
    stock = InMemoryStockRepository()
    for isbn, title, price, currency in [
        ("9780306406157", "A Wizard of Earthsea", "12.50", "USD"),
        ("9780807083697", "Kindred", "8.99", "USD"),
        ("9780441478125", "Le Nom de la rose", "20.00", "EUR"),
    ]:
        book = await books.add(
            Book(
                isbn=isbn,
                title=title,
                author_id=1,
                price_amount=Decimal(price),
                price_currency=currency,
            )
        )
        await stock.set_quantity(book.id, 100)
    return OrderService(books, stock)


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
