"""Errors raised while pricing and placing orders."""

from typing import ClassVar

from shelfwise.platform.errors import InvalidInputError, NotFoundError


class InvalidQuoteError(InvalidInputError):
    """A quote request is malformed as a whole (no lines, or a book listed twice)."""

    code: ClassVar[str] = "invalid_quote"
    title: ClassVar[str] = "Invalid quote"


class OrderNotFoundError(NotFoundError):
    """No order has the requested id."""

    code: ClassVar[str] = "order_not_found"
    title: ClassVar[str] = "Order not found"

    def __init__(self, order_id: int) -> None:
        super().__init__(f"Order {order_id} does not exist.")
        self.order_id = order_id
