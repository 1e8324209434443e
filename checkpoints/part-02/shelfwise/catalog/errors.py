"""Errors raised by the catalog."""

from typing import ClassVar

from shelfwise.platform.errors import NotFoundError


class BookNotFoundError(NotFoundError):
    """No book has the requested id."""

    code: ClassVar[str] = "book_not_found"

    def __init__(self, book_id: int) -> None:
        super().__init__(f"Book {book_id} does not exist.")
        self.book_id = book_id
