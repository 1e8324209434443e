"""Unit tests of the catalog services, using in-memory fakes instead of a database."""

from decimal import Decimal

import pytest

from shelfwise.catalog.errors import (
    AuthorNotFoundError,
    BookNotFoundError,
    DuplicateIsbnError,
    InvalidIsbnError,
    PriceOutOfRangeError,
)
from shelfwise.catalog.service import AuthorService, BookService
from shelfwise.platform.money import InvalidCurrencyError
from tests.catalog.fakes import InMemoryAuthorRepository, InMemoryBookRepository
from tests.factories import new_book
from tests.platform.fakes import FakeUnitOfWork


async def _add_titles(service: BookService, *titles: str) -> None:
    for number, title in enumerate(titles, start=1):
        await service.create_book(new_book(number, title=title))


async def test_create_book_stores_the_canonical_isbn_and_commits(
    service: BookService, books: InMemoryBookRepository, uow: FakeUnitOfWork
) -> None:
    book = await service.create_book(new_book(isbn="0-306-40615-2"))

    assert book.id == 1
    assert book.isbn == "9780306406157"
    assert book.author.name == "Ursula K. Le Guin"
    assert await books.get(1) is book
    assert (uow.commits, uow.rollbacks) == (1, 0)


async def test_create_book_rounds_the_price_to_the_cent(service: BookService) -> None:
    book = await service.create_book(new_book(price_amount=Decimal("12.345")))

    assert book.price_amount == Decimal("12.34")


@pytest.mark.parametrize("price", ["0.01", "9999.99"])
async def test_prices_at_the_edges_of_the_range_are_accepted(
    service: BookService, price: str
) -> None:
    book = await service.create_book(new_book(price_amount=Decimal(price)))

    assert book.price_amount == Decimal(price)


@pytest.mark.parametrize("price", ["0", "0.004", "-5.00", "10000.00", "9999.995"])
async def test_prices_outside_the_range_are_rejected(
    service: BookService, books: InMemoryBookRepository, uow: FakeUnitOfWork, price: str
) -> None:
    with pytest.raises(PriceOutOfRangeError) as raised:
        await service.create_book(new_book(price_amount=Decimal(price)))

    assert raised.value.code == "price_out_of_range"
    assert (await books.list(limit=10, offset=0)).total == 0
    assert uow.commits == 0


async def test_currency_must_be_an_upper_case_code(service: BookService) -> None:
    with pytest.raises(InvalidCurrencyError):
        await service.create_book(new_book(price_currency="usd"))


async def test_invalid_isbn_is_rejected(service: BookService, uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidIsbnError):
        await service.create_book(new_book(isbn="0-306-40615-3"))

    assert uow.commits == 0


async def test_unknown_author_fails_and_commits_nothing(
    service: BookService, books: InMemoryBookRepository, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(AuthorNotFoundError) as raised:
        await service.create_book(new_book(author_id=99))

    assert raised.value.author_id == 99
    assert (uow.commits, uow.rollbacks) == (0, 1)
    assert (await books.list(limit=10, offset=0)).total == 0


async def test_the_same_isbn_in_another_form_is_a_duplicate(
    service: BookService, books: InMemoryBookRepository, uow: FakeUnitOfWork
) -> None:
    await service.create_book(new_book(isbn="0-306-40615-2"))

    with pytest.raises(DuplicateIsbnError) as raised:
        await service.create_book(new_book(isbn="978-0-306-40615-7", title="Another"))

    assert raised.value.isbn == "9780306406157"
    assert (await books.list(limit=10, offset=0)).total == 1
    assert (uow.commits, uow.rollbacks) == (1, 1)


async def test_get_book_returns_the_stored_book(service: BookService) -> None:
    created = await service.create_book(new_book())

    assert await service.get_book(created.id) is created


async def test_get_book_raises_a_coded_error_for_an_unknown_id(service: BookService) -> None:
    with pytest.raises(BookNotFoundError) as raised:
        await service.get_book(42)

    assert raised.value.code == "book_not_found"
    assert raised.value.book_id == 42
    assert "42" in raised.value.detail


async def test_list_books_returns_the_requested_page_in_id_order(service: BookService) -> None:
    await _add_titles(service, "One", "Two", "Three", "Four", "Five")

    page = await service.list_books(limit=2, offset=1)

    assert [book.title for book in page.items] == ["Two", "Three"]
    assert (page.total, page.limit, page.offset) == (5, 2, 1)


async def test_list_books_past_the_end_is_empty_but_keeps_the_total(
    service: BookService,
) -> None:
    await _add_titles(service, "One")

    page = await service.list_books(limit=10, offset=5)

    assert page.items == []
    assert page.total == 1


async def test_search_books_ignores_surrounding_whitespace(service: BookService) -> None:
    await _add_titles(service, "The Dispossessed", "Lavinia")

    page = await service.search_books("  dispossessed ", limit=10, offset=0)

    assert [book.title for book in page.items] == ["The Dispossessed"]


async def test_author_service_creates_gets_and_lists_authors(
    authors: InMemoryAuthorRepository, uow: FakeUnitOfWork
) -> None:
    service = AuthorService(authors, uow)

    created = await service.create_author("Octavia E. Butler")
    page = await service.list_authors(limit=10, offset=0)

    assert created.id == 2
    assert (await service.get_author(2)).name == "Octavia E. Butler"
    assert [author.name for author in page.items] == ["Ursula K. Le Guin", "Octavia E. Butler"]
    assert uow.commits == 1


async def test_get_author_raises_for_an_unknown_id(
    authors: InMemoryAuthorRepository, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(AuthorNotFoundError, match="Author 7 does not exist"):
        await AuthorService(authors, uow).get_author(7)
