"""The SQL catalog repositories, against a real (SQLite) database."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.catalog.errors import DuplicateIsbnError
from shelfwise.catalog.models import Author, Book
from shelfwise.catalog.repository import SqlAuthorRepository, SqlBookRepository
from shelfwise.platform.pagination import InvalidPageError
from tests.factories import a_book, isbn13


async def add_author(session: AsyncSession, name: str) -> Author:
    return await SqlAuthorRepository(session).add(Author(name=name))


async def count_books(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Book)) or 0


async def test_added_book_gets_an_id_and_round_trips_exact_price(session: AsyncSession) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")
    book = await books.add(a_book(1, author=author, title="Kindred", price_amount=Decimal("15.99")))
    await session.commit()
    session.expunge_all()  # forget loaded objects, so the next read really hits the database

    stored = await books.get(book.id)

    assert stored is not None
    assert stored.title == "Kindred"
    assert stored.price_amount == Decimal("15.99")
    assert stored.category is None


async def test_get_loads_the_author_eagerly(session: AsyncSession) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")
    book = await books.add(a_book(1, author=author, title="Kindred"))
    await session.commit()
    session.expunge_all()

    stored = await books.get(book.id)

    assert stored is not None
    assert stored.author.name == "Octavia E. Butler"


async def test_get_by_isbn_finds_the_book_or_none(session: AsyncSession) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")
    await books.add(a_book(1, author=author, title="Kindred"))

    found = await books.get_by_isbn(isbn13(1))

    assert found is not None
    assert found.title == "Kindred"
    assert await books.get_by_isbn("9780000000000") is None


async def test_get_returns_none_for_an_unknown_id(session: AsyncSession) -> None:
    assert await SqlBookRepository(session).get(999) is None


async def test_unloaded_relationships_raise_instead_of_querying(session: AsyncSession) -> None:
    author = await add_author(session, "Octavia E. Butler")
    await SqlBookRepository(session).add(a_book(1, author=author, title="Kindred"))
    await session.commit()
    session.expunge_all()

    # Loaded without the repository's eager loading:
    book = await session.scalar(select(Book))
    plain_author = await session.scalar(select(Author))

    assert book is not None
    assert plain_author is not None
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = book.author
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = plain_author.books


async def test_list_returns_a_page_in_id_order(session: AsyncSession) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")
    for number in range(1, 6):
        await books.add(a_book(number, author=author))

    page = await books.list(limit=2, offset=2)

    assert [book.title for book in page.items] == ["Book 3", "Book 4"]
    assert (page.total, page.limit, page.offset) == (5, 2, 2)
    assert page.items[0].author.name == "Octavia E. Butler"


async def test_list_past_the_end_is_empty_but_keeps_the_total(session: AsyncSession) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")
    await books.add(a_book(1, author=author, title="Kindred"))

    page = await books.list(limit=10, offset=10)

    assert list(page.items) == []
    assert page.total == 1


async def test_list_rejects_an_invalid_window_before_querying(session: AsyncSession) -> None:
    # SQLite would read a negative LIMIT as "no limit"; the repository must not pass it on.
    with pytest.raises(InvalidPageError):
        await SqlBookRepository(session).list(limit=-1, offset=0)


@pytest.fixture
async def shelf(session: AsyncSession) -> SqlBookRepository:
    """Three books by two authors."""
    books = SqlBookRepository(session)
    butler = await add_author(session, "Octavia E. Butler")
    le_guin = await add_author(session, "Ursula K. Le Guin")
    await books.add(a_book(1, author=butler, title="Kindred"))
    await books.add(a_book(2, author=le_guin, title="The Left Hand of Darkness"))
    await books.add(a_book(3, author=le_guin, title="The Dispossessed"))
    return books


async def test_search_matches_titles_ignoring_case(shelf: SqlBookRepository) -> None:
    page = await shelf.search("left HAND", limit=10, offset=0)

    assert [book.title for book in page.items] == ["The Left Hand of Darkness"]
    assert page.total == 1


async def test_search_matches_author_names(shelf: SqlBookRepository) -> None:
    page = await shelf.search("le guin", limit=10, offset=0)

    assert [book.title for book in page.items] == ["The Left Hand of Darkness", "The Dispossessed"]
    assert page.items[0].author.name == "Ursula K. Le Guin"


async def test_search_pages_through_matches(shelf: SqlBookRepository) -> None:
    page = await shelf.search("the", limit=1, offset=1)

    assert [book.title for book in page.items] == ["The Dispossessed"]
    assert page.total == 2


async def test_search_treats_wildcards_literally(shelf: SqlBookRepository) -> None:
    page = await shelf.search("%", limit=10, offset=0)

    assert page.total == 0


async def test_duplicate_isbn_raises_and_the_session_stays_usable(session: AsyncSession) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")
    await books.add(a_book(1, author=author, title="Kindred"))

    with pytest.raises(DuplicateIsbnError) as raised:
        await books.add(a_book(1, author=author, title="Kindred (again)"))

    assert raised.value.code == "duplicate_isbn"
    # Only the failed insert was rolled back; the session can carry on and commit.
    await books.add(a_book(2, author=author, title="The Left Hand of Darkness"))
    await session.commit()
    assert await count_books(session) == 2


async def test_other_integrity_errors_are_not_reported_as_duplicates(
    session: AsyncSession,
) -> None:
    books = SqlBookRepository(session)
    author = await add_author(session, "Octavia E. Butler")

    with pytest.raises(IntegrityError, match="price_amount_positive"):
        await books.add(a_book(1, author=author, title="Kindred", price_amount=Decimal("0.00")))


async def test_author_repository_adds_gets_and_lists(session: AsyncSession) -> None:
    authors = SqlAuthorRepository(session)
    for name in ("Octavia E. Butler", "Ursula K. Le Guin", "N. K. Jemisin"):
        await authors.add(Author(name=name))
    await session.commit()
    session.expunge_all()

    fetched = await authors.get(2)
    page = await authors.list(limit=2, offset=1)

    assert fetched is not None
    assert fetched.name == "Ursula K. Le Guin"
    assert await authors.get(99) is None
    assert [author.name for author in page.items] == ["Ursula K. Le Guin", "N. K. Jemisin"]
    assert page.total == 3
