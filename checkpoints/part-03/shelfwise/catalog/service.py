"""Catalog use cases. They depend on the ports, never on a concrete storage technology."""

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.models import Book
from shelfwise.catalog.ports import BookRepository
from shelfwise.platform.pagination import Page


class BookService:
    """Reads books from the catalog."""

    def __init__(self, books: BookRepository) -> None:
        self._books = books

    async def get_book(self, book_id: int) -> Book:
        """Return the book with this id, or raise ``BookNotFoundError``."""
        book = await self._books.get(book_id)
        if book is None:
            raise BookNotFoundError(book_id)
        return book

    async def list_books(self, limit: int = 20, offset: int = 0) -> Page[Book]:
        """Return one page of books ordered by id."""
        return await self._books.list(limit=limit, offset=offset)
