"""JSON shapes shared by every feature's HTTP API."""

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Generic, Self, TypeVar

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from shelfwise.platform.money import Money
from shelfwise.platform.pagination import Page

ItemT = TypeVar("ItemT")
SourceT = TypeVar("SourceT")

# Input is bounded the way the database bounds it, so a request the database would refuse is
# answered with a 422 naming the field (and OpenAPI advertises the limit) instead of a 500.
# Integer columns are 32-bit on PostgreSQL:
MAX_INT = 2**31 - 1
# PostgreSQL text cannot hold the NUL character (U+0000):
NO_NUL = r"^[^\x00]*$"


def _whole_number(value: object) -> object:
    # Pydantic's lax mode reads true as 1 and "1.0" as 1; an id or a count must be written
    # as digits (path and query values arrive as text) or as a JSON number without a fraction
    # (JSON Schema counts 7.0 as an integer).
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise PydanticCustomError("int_type", "Input should be a whole number")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise PydanticCustomError("int_parsing", "Input should be a whole number, in digits")
    return value


WholeNumber = BeforeValidator(_whole_number)
# The constraint comes before the validator, so OpenAPI shows it as minimum/maximum.
Id = Annotated[int, Interval(ge=1, le=MAX_INT), WholeNumber]
"""A row id in a path, a query or a body."""
Quantity = Annotated[int, Interval(ge=-MAX_INT - 1, le=MAX_INT), WholeNumber]
"""A number of copies; the services decide which numbers make sense."""
# From the printing press to the end of this century.
MIN_YEAR, MAX_YEAR = 1450, 2100
Year = Annotated[int, Interval(ge=MIN_YEAR, le=MAX_YEAR), WholeNumber]
"""A publication year."""


def bounded_text(max_length: int) -> StringConstraints:
    """Text that fits a ``VARCHAR(max_length)``: trimmed, not blank, without NUL."""
    return StringConstraints(
        strip_whitespace=True, min_length=1, max_length=max_length, pattern=NO_NUL
    )


class MoneyModel(BaseModel):
    """Money in JSON: ``{"amount": "12.50", "currency": "USD"}``.

    The amount travels as a string, because JSON numbers are floats to most clients.
    """

    # max_digits keeps absurd inputs out of Decimal arithmetic.
    amount: Annotated[Decimal, Field(max_digits=12, examples=["12.50"])]
    currency: Annotated[str, Field(max_length=3, pattern=NO_NUL, examples=["USD"])]

    @classmethod
    def from_money(cls, money: Money) -> Self:
        """The JSON form of ``money``."""
        return cls(amount=money.amount, currency=money.currency)


class PageModel(BaseModel, Generic[ItemT]):
    """One page of results in JSON."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_page(cls, page: Page[SourceT], convert: Callable[[SourceT], ItemT]) -> Self:
        """Convert each item of a domain ``Page`` and keep its window and total."""
        return cls(
            items=[convert(item) for item in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )
