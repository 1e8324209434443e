"""Errors raised while pricing orders."""

from typing import ClassVar

from shelfwise.platform.errors import InvalidInputError


class InvalidQuoteError(InvalidInputError):
    """A quote request is malformed as a whole (no lines, or a book listed twice)."""

    code: ClassVar[str] = "invalid_quote"
