"""What the catalog needs from storage, stated as Protocols.

Any class with matching methods satisfies a Protocol; it does not have to inherit from it. The
SQL adapters and the in-memory fakes used in tests are therefore unrelated classes, and mypy
checks that both fit.
"""

from collections.abc import Sequence
from typing import Protocol

from shelfwise.catalog.models import Author, Book


class BookRepository(Protocol):
    """Stores and finds books."""

    async def get(self, book_id: int) -> Book | None:
        """Return the book with this id, or ``None``."""
        ...

    async def get_by_isbn(self, isbn: str) -> Book | None:
        """Return the book with this (normalized) ISBN, or ``None``."""
        ...

    async def add(self, book: Book) -> Book:
        """Store a new book and return it with its id assigned."""
        ...

    async def list(self, limit: int, offset: int) -> Sequence[Book]:
        """Return at most ``limit`` books ordered by id, skipping the first ``offset``."""
        ...

    async def count(self) -> int:
        """Return how many books are stored."""
        ...

    async def search(self, query: str, limit: int, offset: int) -> Sequence[Book]:
        """Return books whose title or author name contains ``query``, ignoring case."""
        ...


class AuthorRepository(Protocol):
    """Stores and finds authors."""

    async def get(self, author_id: int) -> Author | None:
        """Return the author with this id, or ``None``."""
        ...

    async def add(self, author: Author) -> Author:
        """Store a new author and return it with its id assigned."""
        ...

    async def list(self, limit: int, offset: int) -> Sequence[Author]:
        """Return at most ``limit`` authors ordered by id, skipping the first ``offset``."""
        ...

    async def count(self) -> int:
        """Return how many authors are stored."""
        ...
