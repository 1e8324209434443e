"""Errors raised about stock levels."""

from typing import ClassVar

from shelfwise.platform.errors import ConflictError, InvalidInputError


class InvalidQuantityError(InvalidInputError):
    """A number of copies is outside the allowed range."""

    code: ClassVar[str] = "invalid_quantity"
    title: ClassVar[str] = "Invalid quantity"


class InsufficientStockError(ConflictError):
    """Fewer copies are on hand than were requested."""

    code: ClassVar[str] = "insufficient_stock"
    title: ClassVar[str] = "Insufficient stock"

    def __init__(self, book_id: int, requested: int, available: int) -> None:
        super().__init__(
            f"Book {book_id}: {requested} {'copy' if requested == 1 else 'copies'} requested "
            f"but only {available} available."
        )
        self.book_id = book_id
        self.requested = requested
        self.available = available


class CountBelowReservedError(ConflictError):
    """A stock count is lower than the copies that orders in progress have reserved and not
    shipped yet: those copies should still be on the shelf. Count again, or cancel orders."""

    code: ClassVar[str] = "count_below_reserved"
    title: ClassVar[str] = "Count below reserved copies"

    def __init__(self, book_id: int, counted: int, reserved: int) -> None:
        super().__init__(
            f"Book {book_id}: a count of {counted} is below the {reserved} copies reserved by "
            "orders that have not shipped."
        )
        self.book_id = book_id


class StockContendedError(ConflictError):
    """Every attempt to change the stock count lost a race with another change of the same
    book. Retry the request in a moment."""

    code: ClassVar[str] = "stock_contended"
    title: ClassVar[str] = "Stock count contended"
