"""JSON shapes of the orders HTTP API."""

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, Field

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
