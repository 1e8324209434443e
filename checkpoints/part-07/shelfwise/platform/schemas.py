"""JSON shapes shared by every feature's HTTP API."""

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Generic, Self, TypeVar

from pydantic import BaseModel, Field

from shelfwise.platform.money import Money
from shelfwise.platform.pagination import Page

ItemT = TypeVar("ItemT")
SourceT = TypeVar("SourceT")


class MoneyModel(BaseModel):
    """Money in JSON: ``{"amount": "12.50", "currency": "USD"}``.

    The amount travels as a string, because JSON numbers are floats to most clients.
    """

    # max_digits keeps absurd inputs out of Decimal arithmetic.
    amount: Annotated[Decimal, Field(max_digits=12, examples=["12.50"])]
    currency: Annotated[str, Field(examples=["USD"])]

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
