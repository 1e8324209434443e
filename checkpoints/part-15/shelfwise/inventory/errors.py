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
