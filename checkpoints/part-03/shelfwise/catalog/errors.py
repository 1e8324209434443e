"""Errors raised by the catalog."""

from typing import ClassVar

from shelfwise.platform.errors import ConflictError, NotFoundError


class BookNotFoundError(NotFoundError):
    """No book has the requested id."""

    code: ClassVar[str] = "book_not_found"

    def __init__(self, book_id: int) -> None:
        super().__init__(f"Book {book_id} does not exist.")
        self.book_id = book_id


class DuplicateIsbnError(ConflictError):
    """Another book already has this ISBN."""

    code: ClassVar[str] = "duplicate_isbn"

    def __init__(self, isbn: str) -> None:
        super().__init__(f"A book with ISBN {isbn} already exists.")
        self.isbn = isbn
