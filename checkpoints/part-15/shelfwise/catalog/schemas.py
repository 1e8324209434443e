"""JSON shapes of the catalog's HTTP API."""

from typing import Annotated, Self

from pydantic import BaseModel, Field

from shelfwise.catalog.importer import ImportReport
from shelfwise.catalog.models import CATEGORY_LENGTH, NAME_LENGTH, TITLE_LENGTH, Author, Book
from shelfwise.platform.schemas import Id, MoneyModel, Year, bounded_text


class AuthorCreate(BaseModel):
    """Body of ``POST /authors``."""

    name: Annotated[str, bounded_text(NAME_LENGTH), Field(examples=["Ursula K. Le Guin"])]


class AuthorRead(BaseModel):
    """An author as the API returns it."""

    id: int
    name: str

    @classmethod
    def from_author(cls, author: Author) -> Self:
        """The JSON form of ``author``."""
        return cls(id=author.id, name=author.name)


class BookCreate(BaseModel):
    """Body of ``POST /books``. The ISBN may be an ISBN-10 or ISBN-13, with or without hyphens."""

    # Room for hyphens and spaces around the 13 digits; the service checks the rest.
    isbn: Annotated[str, bounded_text(32), Field(examples=["0-306-40615-2"])]
    title: Annotated[str, bounded_text(TITLE_LENGTH)]
    author_id: Id
    price: MoneyModel
    category: Annotated[str, bounded_text(CATEGORY_LENGTH)] | None = None
    publication_year: Year | None = None


class BookRead(BaseModel):
    """A book as the API returns it: canonical ISBN-13 and the author's name included."""

    id: int
    isbn: str
    title: str
    author_id: int
    author_name: str
    price: MoneyModel
    category: str | None
    publication_year: int | None

    @classmethod
    def from_book(cls, book: Book) -> Self:
        """The JSON form of ``book``, whose author must be loaded."""
        return cls(
            id=book.id,
            isbn=book.isbn,
            title=book.title,
            author_id=book.author_id,
            author_name=book.author.name,
            price=MoneyModel.from_money(book.price),
            category=book.category,
            publication_year=book.publication_year,
        )


class RowErrorRead(BaseModel):
    """A CSV row that was not imported: its number (the header is row 1) and why."""

    row: int
    code: str
    detail: str


class ImportReportRead(BaseModel):
    """The outcome of ``POST /books/import``."""

    imported: int
    rejected: int
    errors: list[RowErrorRead]

    @classmethod
    def from_report(cls, report: ImportReport) -> Self:
        """The JSON form of ``report``."""
        return cls(
            imported=report.imported,
            rejected=len(report.errors),
            errors=[
                RowErrorRead(row=error.row, code=error.code, detail=error.detail)
                for error in report.errors
            ],
        )
