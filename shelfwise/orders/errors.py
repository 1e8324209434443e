"""Errors raised while pricing and placing orders."""

from typing import ClassVar

from shelfwise.platform.errors import ConflictError, DomainError, InvalidInputError, NotFoundError


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


class InvalidIdempotencyKeyError(DomainError):
    """The `Idempotency-Key` header is not a key: send 1 to 255 printable ASCII characters
    (a UUID is a good key), optionally as a quoted string."""

    code: ClassVar[str] = "invalid_idempotency_key"
    title: ClassVar[str] = "Invalid idempotency key"


class IdempotencyKeyInUseError(ConflictError):
    """Another request with this `Idempotency-Key` is still being processed. Retry in a moment:
    you will then get its response."""

    code: ClassVar[str] = "idempotency_key_in_use"
    title: ClassVar[str] = "Idempotency key in use"

    def __init__(self, key: str) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed.")
        self.key = key


class IdempotencyKeyReusedError(InvalidInputError):
    """This `Idempotency-Key` was sent before with a different request body. A key names one
    request: use a new key for a new order."""

    code: ClassVar[str] = "idempotency_key_reused"
    title: ClassVar[str] = "Idempotency key reused"

    def __init__(self, key: str) -> None:
        super().__init__("This Idempotency-Key was used with a different request body.")
        self.key = key
