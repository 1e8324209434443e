"""JSON shapes of the orders HTTP API."""

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, Field

from shelfwise.orders.models import Order, OrderItem, OrderStatus
from shelfwise.orders.service import PricedLine, Quote
from shelfwise.platform.schemas import Id, MoneyModel, Quantity

# A basket, not a warehouse transfer: the cap bounds the work (and the body) of one request.
MAX_LINES = 100


class QuoteLineRequest(BaseModel):
    """One requested line: a book and a number of copies."""

    book_id: Id
    quantity: Quantity


Lines = Annotated[list[QuoteLineRequest], Field(max_length=MAX_LINES)]


class QuoteRequest(BaseModel):
    """Body of ``POST /orders/quote``."""

    lines: Lines


class OrderCreate(BaseModel):
    """Body of ``POST /orders``: the same lines a quote takes."""

    lines: Lines


class PricedLineRead(BaseModel):
    """One priced line of a quote."""

    book_id: int
    title: str
    quantity: int
    unit_price: MoneyModel
    line_total: MoneyModel

    @classmethod
    def from_line(cls, line: PricedLine) -> Self:
        """The JSON form of ``line``."""
        return cls(
            book_id=line.book_id,
            title=line.title,
            quantity=line.quantity,
            unit_price=MoneyModel.from_money(line.unit_price),
            line_total=MoneyModel.from_money(line.line_total),
        )


class QuoteRead(BaseModel):
    """A quote as the API returns it. The discount percent is a string, like amounts."""

    lines: list[PricedLineRead]
    subtotal: MoneyModel
    discount_percent: Decimal
    discount: MoneyModel
    total: MoneyModel

    @classmethod
    def from_quote(cls, quote: Quote) -> Self:
        """The JSON form of ``quote``."""
        return cls(
            lines=[PricedLineRead.from_line(line) for line in quote.lines],
            subtotal=MoneyModel.from_money(quote.subtotal),
            discount_percent=quote.discount_percent,
            discount=MoneyModel.from_money(quote.discount),
            total=MoneyModel.from_money(quote.total),
        )


class OrderItemRead(BaseModel):
    """One line of a placed order."""

    book_id: int
    quantity: int
    unit_price: MoneyModel
    line_total: MoneyModel

    @classmethod
    def from_item(cls, item: OrderItem) -> Self:
        """The JSON form of ``item``."""
        return cls(
            book_id=item.book_id,
            quantity=item.quantity,
            unit_price=MoneyModel.from_money(item.unit_price),
            line_total=MoneyModel.from_money(item.line_total),
        )


class OrderRead(BaseModel):
    """An order as the API returns it."""

    id: int
    status: OrderStatus
    items: list[OrderItemRead]
    discount_percent: Decimal
    total: MoneyModel

    @classmethod
    def from_order(cls, order: Order) -> Self:
        """The JSON form of ``order``, whose items must be loaded."""
        return cls(
            id=order.id,
            status=order.status,
            items=[OrderItemRead.from_item(item) for item in order.items],
            discount_percent=order.discount_percent,
            total=MoneyModel.from_money(order.total),
        )
