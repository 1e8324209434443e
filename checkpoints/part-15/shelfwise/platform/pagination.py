"""One page of results, plus the rules for what a valid page request is."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from shelfwise.platform.errors import InvalidInputError

# The largest page a client may ask for; it bounds the work a single request can cause.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

T = TypeVar("T")


class InvalidPageError(InvalidInputError):
    """A page was requested with a limit or offset outside the allowed range."""

    code: ClassVar[str] = "invalid_page"
    title: ClassVar[str] = "Invalid page"


def ensure_valid_window(limit: int, offset: int) -> None:
    """Raise ``InvalidPageError`` unless 1 <= limit <= MAX_PAGE_SIZE and offset >= 0."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidPageError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}.")
    if offset < 0:
        raise InvalidPageError(f"offset must not be negative, got {offset}.")


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items`` is the window ``[offset, offset + limit)`` of ``total`` matching results."""

    items: Sequence[T]
    total: int
    limit: int
    offset: int

    def __post_init__(self) -> None:
        ensure_valid_window(self.limit, self.offset)
