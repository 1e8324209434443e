"""Errors raised by the catalog."""

from typing import ClassVar

from shelfwise.platform.errors import ConflictError, InvalidInputError, NotFoundError


class BookNotFoundError(NotFoundError):
    """No book has the requested id."""

    code: ClassVar[str] = "book_not_found"
    title: ClassVar[str] = "Book not found"

    def __init__(self, book_id: int) -> None:
        super().__init__(f"Book {book_id} does not exist.")
        self.book_id = book_id


class AuthorNotFoundError(NotFoundError):
    """No author has the requested id."""

    code: ClassVar[str] = "author_not_found"
    title: ClassVar[str] = "Author not found"

    def __init__(self, author_id: int) -> None:
        super().__init__(f"Author {author_id} does not exist.")
        self.author_id = author_id


class DuplicateIsbnError(ConflictError):
    """Another book already has this ISBN."""

    code: ClassVar[str] = "duplicate_isbn"
    title: ClassVar[str] = "Duplicate ISBN"

    def __init__(self, isbn: str) -> None:
        super().__init__(f"A book with ISBN {isbn} already exists.")
        self.isbn = isbn


class InvalidIsbnError(InvalidInputError):
    """A string is not a valid ISBN-10 or ISBN-13; ``detail`` says why."""

    code: ClassVar[str] = "invalid_isbn"
    title: ClassVar[str] = "Invalid ISBN"


class PriceOutOfRangeError(InvalidInputError):
    """A list price is outside the range the catalog accepts."""

    code: ClassVar[str] = "price_out_of_range"
    title: ClassVar[str] = "Price out of range"


class InvalidCsvError(InvalidInputError):
    """A CSV import cannot be read as a whole: it is empty, lacks a required column or has too
    many rows. Nothing was imported."""

    code: ClassVar[str] = "invalid_csv"
    title: ClassVar[str] = "Invalid CSV"


class InvalidCsvRowError(InvalidInputError):
    """One row of a CSV import cannot be read: a field is missing, extra or not a number."""

    code: ClassVar[str] = "invalid_csv_row"
    title: ClassVar[str] = "Invalid CSV row"
