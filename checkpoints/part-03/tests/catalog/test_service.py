"""Unit tests of the catalog services, using in-memory fakes instead of a database."""

from decimal import Decimal

import pytest

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.catalog.models import Author, Book
from shelfwise.catalog.service import BookService
from tests.catalog.fakes import InMemoryAuthorRepository, InMemoryBookRepository


async def _catalog_with_books(*titles: str) -> InMemoryBookRepository:
    authors = InMemoryAuthorRepository()
    author = await authors.add(Author(name="Ursula K. Le Guin"))
    books = InMemoryBookRepository(authors)
    for number, title in enumerate(titles):
        await books.add(
            Book(
                isbn=f"978000000000{number}",
                title=title,
                author_id=author.id,
                price_amount=Decimal("9.99"),
                price_currency="USD",
            )
        )
    return books


async def test_get_book_returns_the_stored_book() -> None:
    books = await _catalog_with_books("A Wizard of Earthsea", "The Dispossessed")

    book = await BookService(books).get_book(2)

    assert book.title == "The Dispossessed"
    assert book.price_amount == Decimal("9.99")


async def test_get_book_raises_a_coded_error_for_an_unknown_id() -> None:
    service = BookService(await _catalog_with_books("A Wizard of Earthsea"))

    with pytest.raises(BookNotFoundError) as raised:
        await service.get_book(42)

    assert raised.value.code == "book_not_found"
    assert raised.value.book_id == 42
    assert "42" in raised.value.detail


async def test_list_books_returns_the_requested_page_in_id_order() -> None:
    books = await _catalog_with_books("One", "Two", "Three", "Four", "Five")

    page = await BookService(books).list_books(limit=2, offset=1)

    assert [book.title for book in page.items] == ["Two", "Three"]
    assert (page.total, page.limit, page.offset) == (5, 2, 1)


async def test_list_books_past_the_end_is_empty_but_keeps_the_total() -> None:
    books = await _catalog_with_books("One")

    page = await BookService(books).list_books(limit=10, offset=5)

    assert page.items == []
    assert page.total == 1
