"""In-memory stand-ins for the catalog ports, for fast unit tests.

They inherit nothing: they satisfy ``BookRepository`` and ``AuthorRepository`` structurally, and
the ``_conforms_*`` functions at the bottom make mypy prove it.
"""

from collections.abc import Sequence
from typing import TypeVar

from shelfwise.catalog.errors import DuplicateIsbnError
from shelfwise.catalog.models import Author, Book
from shelfwise.catalog.ports import AuthorRepository, BookRepository
from shelfwise.platform.pagination import Page

T = TypeVar("T")


def page_of(ordered: Sequence[T], limit: int, offset: int) -> Page[T]:
    """Slice an already-ordered sequence the way the SQL adapters page a query."""
    window = ordered[offset : offset + limit]
    return Page(items=window, total=len(ordered), limit=limit, offset=offset)


class InMemoryAuthorRepository:
    """Authors kept in a dict keyed by id; ids are assigned 1, 2, 3, ... like the database."""

    def __init__(self) -> None:
        self._authors: dict[int, Author] = {}

    async def get(self, author_id: int) -> Author | None:
        return self._authors.get(author_id)

    async def add(self, author: Author) -> Author:
        author.id = len(self._authors) + 1
        self._authors[author.id] = author
        return author

    async def list(self, limit: int, offset: int) -> Page[Author]:
        return page_of(sorted(self._authors.values(), key=lambda a: a.id), limit, offset)


class InMemoryBookRepository:
    """Books kept in a dict keyed by id.

    Searching by author name needs the authors, so the fake can be given the author repository
    that holds them.
    """

    def __init__(self, authors: InMemoryAuthorRepository | None = None) -> None:
        self._books: dict[int, Book] = {}
        self._authors = authors or InMemoryAuthorRepository()

    async def get(self, book_id: int) -> Book | None:
        return self._books.get(book_id)

    async def get_by_isbn(self, isbn: str) -> Book | None:
        return next((b for b in self._books.values() if b.isbn == isbn), None)

    async def add(self, book: Book) -> Book:
        # Mirrors the unique constraint the SQL adapter relies on.
        if await self.get_by_isbn(book.isbn) is not None:
            raise DuplicateIsbnError(book.isbn)
        book.id = len(self._books) + 1
        self._books[book.id] = book
        return book

    async def list(self, limit: int, offset: int) -> Page[Book]:
        return page_of(self._ordered(), limit, offset)

    async def search(
        self, query: str, limit: int, offset: int, isbn: str | None = None
    ) -> Page[Book]:
        needle = query.casefold()
        matches = [
            book
            for book in self._ordered()
            if needle in book.title.casefold()
            or needle in await self._author_name(book)
            or book.isbn == isbn
        ]
        return page_of(matches, limit, offset)

    def _ordered(self) -> Sequence[Book]:
        return sorted(self._books.values(), key=lambda b: b.id)

    async def _author_name(self, book: Book) -> str:
        author = await self._authors.get(book.author_id)
        return author.name.casefold() if author else ""


def _conforms_to_book_port(repository: InMemoryBookRepository) -> BookRepository:
    return repository


def _conforms_to_author_port(repository: InMemoryAuthorRepository) -> AuthorRepository:
    return repository
