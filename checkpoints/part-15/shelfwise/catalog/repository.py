"""SQLAlchemy adapters for the catalog ports."""

from typing import TYPE_CHECKING

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from shelfwise.catalog.errors import DuplicateIsbnError
from shelfwise.catalog.models import Author, Book
from shelfwise.platform.db import fetch_page
from shelfwise.platform.pagination import Page

if TYPE_CHECKING:
    from shelfwise.catalog.ports import AuthorRepository, BookRepository


class SqlBookRepository:
    """Books stored in a relational database, through one ``AsyncSession``.

    The repository flushes but never commits: the caller owns the transaction.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, book_id: int) -> Book | None:
        return await self._session.scalar(_books_with_author().where(Book.id == book_id))

    async def get_by_isbn(self, isbn: str) -> Book | None:
        return await self._session.scalar(_books_with_author().where(Book.isbn == isbn))

    async def add(self, book: Book) -> Book:
        try:
            # A savepoint: if the insert fails, only it is undone and the session stays usable.
            async with self._session.begin_nested():
                self._session.add(book)
        except IntegrityError as error:
            # Drivers word constraint errors differently; asking the database is portable.
            if await self.get_by_isbn(book.isbn) is not None:
                raise DuplicateIsbnError(book.isbn) from error
            raise
        return book

    async def list(self, limit: int, offset: int) -> Page[Book]:
        return await fetch_page(self._session, _books_with_author(), limit, offset)

    async def search(
        self, query: str, limit: int, offset: int, isbn: str | None = None
    ) -> Page[Book]:
        # autoescape: a "%" or "_" typed by the user is matched literally, not as a wildcard.
        conditions = [
            Book.title.icontains(query, autoescape=True),
            Book.author.has(Author.name.icontains(query, autoescape=True)),
        ]
        if isbn is not None:
            conditions.append(Book.isbn == isbn)
        matches = _books_with_author().where(or_(*conditions))
        return await fetch_page(self._session, matches, limit, offset)


class SqlAuthorRepository:
    """Authors stored in a relational database, through one ``AsyncSession``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, author_id: int) -> Author | None:
        return await self._session.get(Author, author_id)

    async def add(self, author: Author) -> Author:
        self._session.add(author)
        await self._session.flush()  # assigns the id
        return author

    async def list(self, limit: int, offset: int) -> Page[Author]:
        return await fetch_page(self._session, select(Author).order_by(Author.id), limit, offset)


def _books_with_author() -> Select[Book]:
    """Books in id order, each with its author loaded in the same query."""
    return select(Book).options(joinedload(Book.author, innerjoin=True)).order_by(Book.id)


if TYPE_CHECKING:
    # mypy proves the adapters satisfy the ports they were written for; nothing runs at runtime.
    def _conforms(session: AsyncSession) -> tuple[BookRepository, AuthorRepository]:
        return SqlBookRepository(session), SqlAuthorRepository(session)
