"""What the catalog needs from storage, stated as Protocols.

Any class with matching methods satisfies a Protocol; it does not have to inherit from it. The
SQL adapters and the in-memory fakes used in tests are therefore unrelated classes, and mypy
checks that both fit.
"""

from typing import Protocol

from shelfwise.catalog.models import Author, Book
from shelfwise.platform.pagination import Page


class BookRepository(Protocol):
    """Stores and finds books."""

    async def get(self, book_id: int) -> Book | None:
        """Return the book with this id and its author loaded, or ``None``."""
        ...

    async def get_by_isbn(self, isbn: str) -> Book | None:
        """Return the book with this (normalized) ISBN, or ``None``."""
        ...

    async def add(self, book: Book) -> Book:
        """Store a new book and return it with its id assigned.

        Raises ``DuplicateIsbnError`` if another book already has the same ISBN.
        """
        ...

    async def list(self, limit: int, offset: int) -> Page[Book]:
        """Return one page of books, ordered by id, with their authors loaded."""
        ...

    async def search(
        self, query: str, limit: int, offset: int, isbn: str | None = None
    ) -> Page[Book]:
        """Return one page of books whose title or author name contains ``query``, ignoring case,
        or (when given) whose ISBN is ``isbn``.

        Ordered by id, with their authors loaded.
        """
        ...


class AuthorRepository(Protocol):
    """Stores and finds authors."""

    async def get(self, author_id: int) -> Author | None:
        """Return the author with this id, or ``None``."""
        ...

    async def add(self, author: Author) -> Author:
        """Store a new author and return it with its id assigned."""
        ...

    async def list(self, limit: int, offset: int) -> Page[Author]:
        """Return one page of authors, ordered by id."""
        ...
