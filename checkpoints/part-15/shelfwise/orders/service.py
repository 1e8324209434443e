"""Order use cases: pricing a basket (a quote) and placing an order."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.ports import BookRepository
from shelfwise.inventory.errors import InsufficientStockError, InvalidQuantityError
from shelfwise.inventory.ports import StockRepository
from shelfwise.orders.discounts import BULK_DISCOUNT_TIERS, DiscountTier, bulk_discount_percent
from shelfwise.orders.errors import InvalidQuoteError, OrderNotFoundError
from shelfwise.orders.models import Order, OrderItem, OrderStatus
from shelfwise.orders.ports import OrderEvents, OrderRepository
from shelfwise.platform.money import Money
from shelfwise.platform.unit_of_work import UnitOfWork

PERCENT_PLACES = Decimal("0.01")
# Amounts are stored (and sent) with 12 digits, 2 after the point: NUMERIC(12, 2).
MAX_AMOUNT = Decimal("9999999999.99")


@dataclass(frozen=True)
class QuoteLine:
    """One line of a quote request: a book and how many copies of it."""

    book_id: int
    quantity: int


@dataclass(frozen=True)
class PricedLine:
    """One line of a quote, priced."""

    book_id: int
    title: str
    quantity: int
    unit_price: Money
    line_total: Money


@dataclass(frozen=True)
class Quote:
    """What a basket would cost today. ``subtotal - discount == total``, to the cent."""

    lines: tuple[PricedLine, ...]
    subtotal: Money
    discount_percent: Decimal
    discount: Money
    total: Money


class OrderService:
    """Prices baskets of books and places orders for them.

    Quoting only reads, so it needs no unit of work; placing an order writes stock and the order
    in one.
    """

    def __init__(
        self,
        books: BookRepository,
        stock: StockRepository,
        orders: OrderRepository,
        uow: UnitOfWork,
        *,
        discount_tiers: tuple[DiscountTier, ...] = BULK_DISCOUNT_TIERS,
        events: OrderEvents | None = None,
    ) -> None:
        self._books = books
        self._stock = stock
        self._orders = orders
        self._uow = uow
        # The tenant's negotiated terms, resolved before the service is built (part 10).
        self._discount_tiers = discount_tiers
        self._events = events

    async def quote(self, lines: Sequence[QuoteLine]) -> Quote:
        """Price ``lines`` at list price, apply the bulk discount, and check stock.

        Raises ``InvalidQuoteError``, ``InvalidQuantityError``, ``BookNotFoundError``,
        ``InsufficientStockError`` or ``CurrencyMismatchError``.
        """
        _check_request(lines)
        priced = tuple([await self._price(line) for line in lines])
        subtotal = reduce(Money.add, (line.line_total for line in priced))
        if subtotal.amount > MAX_AMOUNT:
            raise InvalidQuoteError(
                f"An order can total at most {MAX_AMOUNT} {subtotal.currency}; "
                f"this one comes to {subtotal}."
            )
        copies = sum(line.quantity for line in lines)
        percent = bulk_discount_percent(copies, self._discount_tiers)
        total = subtotal.discounted(percent)
        return Quote(
            lines=priced,
            subtotal=subtotal,
            discount_percent=percent,
            discount=subtotal.subtract(total),
            total=total,
        )

    async def place_order(self, lines: Sequence[QuoteLine]) -> Order:
        """Order ``lines``: price them exactly as ``quote`` does, take the copies off the stock
        and store the order, all in one unit of work.

        Raises what ``quote`` raises. If any line lacks stock, even because another order took the
        copies a moment ago, nothing is stored and no stock changes.
        """
        async with self._uow:
            quote = await self.quote(lines)
            # The quote checked stock, for a clear error; the conditional decrement is what
            # guarantees it under concurrency. Taking books in id order means two orders for the
            # same books lock their stock rows in the same order and cannot deadlock.
            for line in sorted(quote.lines, key=lambda line: line.book_id):
                if not await self._stock.decrement_if_available(line.book_id, line.quantity):
                    available = await self._stock.quantity(line.book_id)
                    raise InsufficientStockError(line.book_id, line.quantity, available)
            order = await self._orders.add(_order_from(quote))
            await self._uow.commit()
        # After the commit, never before: a job must not announce an order that was rolled back.
        if self._events is not None:
            await self._events.order_placed(order)
        return order

    async def get_order(self, order_id: int) -> Order:
        """Return the order with this id and its items, or raise ``OrderNotFoundError``."""
        order = await self._orders.get(order_id)
        if order is None:
            raise OrderNotFoundError(order_id)
        return order

    async def _price(self, line: QuoteLine) -> PricedLine:
        book = await self._books.get(line.book_id)
        if book is None:
            raise BookNotFoundError(line.book_id)
        available = await self._stock.quantity(line.book_id)
        if line.quantity > available:
            raise InsufficientStockError(line.book_id, line.quantity, available)
        return PricedLine(
            book_id=book.id,
            title=book.title,
            quantity=line.quantity,
            unit_price=book.price,
            line_total=book.price.times(line.quantity),
        )


def _order_from(quote: Quote) -> Order:
    """A new order that records the quote's prices, discount and total."""
    return Order(
        status=OrderStatus.PLACED,
        total_amount=quote.total.amount,
        total_currency=quote.total.currency,
        # Quantized as the column stores it, so a new order and a re-read one look alike.
        discount_percent=quote.discount_percent.quantize(PERCENT_PLACES),
        items=[
            OrderItem(
                book_id=line.book_id,
                quantity=line.quantity,
                unit_price_amount=line.unit_price.amount,
                unit_price_currency=line.unit_price.currency,
                line_total_amount=line.line_total.amount,
            )
            for line in quote.lines
        ],
    )


def _check_request(lines: Sequence[QuoteLine]) -> None:
    """Reject malformed requests before doing any I/O."""
    if not lines:
        raise InvalidQuoteError("A quote needs at least one line.")
    book_ids = [line.book_id for line in lines]
    if len(set(book_ids)) != len(book_ids):
        raise InvalidQuoteError("Each book may appear on only one line of a quote.")
    for line in lines:
        if line.quantity < 1:
            raise InvalidQuantityError(
                f"Book {line.book_id}: a quote line needs at least 1 copy, got {line.quantity}."
            )
