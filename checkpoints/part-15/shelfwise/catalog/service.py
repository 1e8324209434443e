"""Catalog use cases. They depend on the ports, never on a concrete storage technology."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shelfwise.catalog.errors import (
    AuthorNotFoundError,
    BookNotFoundError,
    DuplicateIsbnError,
    InvalidIsbnError,
    PriceOutOfRangeError,
)
from shelfwise.catalog.isbn import normalize_isbn
from shelfwise.catalog.models import Author, Book
from shelfwise.catalog.ports import AuthorRepository, BookRepository
from shelfwise.platform.errors import DomainError
from shelfwise.platform.money import Money
from shelfwise.platform.pagination import DEFAULT_PAGE_SIZE, Page
from shelfwise.platform.unit_of_work import UnitOfWork

# A beta feature behind a flag: searching for "0-306-40615-2" finds that book.
ISBN_SEARCH = "catalog.isbn_search"
MIN_PRICE = Decimal("0.01")
MAX_PRICE = Decimal("9999.99")


@dataclass(frozen=True)
class NewBook:
    """What a caller supplies to add a book to the catalog."""

    isbn: str
    title: str
    author_id: int
    price_amount: Decimal
    price_currency: str
    category: str | None = None
    publication_year: int | None = None


class BookService:
    """Adds, finds and searches books.

    Writes happen inside the unit of work and are committed only when every rule has passed.
    Reads need no unit of work: there is nothing to commit.
    """

    def __init__(
        self,
        books: BookRepository,
        authors: AuthorRepository,
        uow: UnitOfWork,
        *,
        isbn_search: bool = False,
    ) -> None:
        self._books = books
        self._authors = authors
        self._uow = uow
        # The ISBN_SEARCH feature flag, decided for the current tenant (part 10).
        self._isbn_search = isbn_search

    async def create_book(self, new_book: NewBook) -> Book:
        """Validate ``new_book`` and add it to the catalog.

        Raises ``InvalidIsbnError``, ``PriceOutOfRangeError``, ``InvalidCurrencyError``,
        ``AuthorNotFoundError`` or ``DuplicateIsbnError``; in every case nothing is stored.
        """
        async with self._uow:
            book = await self._add(new_book)
            await self._uow.commit()
        return book

    async def add_books(self, new_books: Sequence[NewBook]) -> list[Book | DomainError]:
        """Add each valid book, one after the other, in one unit of work.

        Returns, position by position, the stored book or the error that rejected it; the valid
        books are committed together. The session stays usable after a rejected book because
        the repository inserts inside a savepoint.
        """
        results: list[Book | DomainError] = []
        async with self._uow:
            for new_book in new_books:
                try:
                    results.append(await self._add(new_book))
                except DomainError as error:
                    results.append(error)
            await self._uow.commit()
        return results

    async def get_book(self, book_id: int) -> Book:
        """Return the book with this id, or raise ``BookNotFoundError``."""
        book = await self._books.get(book_id)
        if book is None:
            raise BookNotFoundError(book_id)
        return book

    async def list_books(self, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0) -> Page[Book]:
        """Return one page of books ordered by id."""
        return await self._books.list(limit=limit, offset=offset)

    async def search_books(
        self, query: str, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> Page[Book]:
        """Return one page of books whose title or author name contains ``query``; with the
        ISBN_SEARCH flag on, also the book whose ISBN ``query`` is, in any written form."""
        query = query.strip()
        isbn = _as_isbn(query) if self._isbn_search else None
        return await self._books.search(query, limit=limit, offset=offset, isbn=isbn)

    async def _add(self, new_book: NewBook) -> Book:
        """Check every rule and add the book, inside the caller's unit of work."""
        isbn = normalize_isbn(new_book.isbn)
        price = _list_price(new_book.price_amount, new_book.price_currency)
        author = await self._authors.get(new_book.author_id)
        if author is None:
            raise AuthorNotFoundError(new_book.author_id)
        # Checked up front for a clear error; the repository still maps the unique
        # constraint, for the race where two requests add the same ISBN at once.
        if await self._books.get_by_isbn(isbn) is not None:
            raise DuplicateIsbnError(isbn)
        return await self._books.add(
            Book(
                isbn=isbn,
                title=new_book.title,
                author=author,
                price_amount=price.amount,
                price_currency=price.currency,
                category=new_book.category,
                publication_year=new_book.publication_year,
            )
        )


class AuthorService:
    """Adds and finds authors."""

    def __init__(self, authors: AuthorRepository, uow: UnitOfWork) -> None:
        self._authors = authors
        self._uow = uow

    async def create_author(self, name: str) -> Author:
        """Add an author and return it with its id."""
        async with self._uow:
            author = await self._authors.add(Author(name=name))
            await self._uow.commit()
        return author

    async def get_author(self, author_id: int) -> Author:
        """Return the author with this id, or raise ``AuthorNotFoundError``."""
        author = await self._authors.get(author_id)
        if author is None:
            raise AuthorNotFoundError(author_id)
        return author

    async def list_authors(self, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0) -> Page[Author]:
        """Return one page of authors ordered by id."""
        return await self._authors.list(limit=limit, offset=offset)


def _list_price(amount: Decimal, currency: str) -> Money:
    """The price as ``Money`` (which checks the currency), if it is within the accepted range."""
    price = Money(amount, currency)
    if not MIN_PRICE <= price.amount <= MAX_PRICE:
        raise PriceOutOfRangeError(
            f"A list price is between {MIN_PRICE} and {MAX_PRICE}, got {price.amount}."
        )
    return price


def _as_isbn(query: str) -> str | None:
    """``query`` as a normalized ISBN-13, or ``None`` if it is not an ISBN."""
    try:
        return normalize_isbn(query)
    except InvalidIsbnError:
        return None
