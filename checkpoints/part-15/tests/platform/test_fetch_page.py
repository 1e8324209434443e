"""Property: paging through any result with any page size yields every row exactly once.

``fetch_page`` turns a query into LIMIT/OFFSET windows and a total. The rows live in a SQLite
file filled once for the module; each example opens its own engine in its own event loop
(hypothesis runs examples synchronously). The SQL is the same on PostgreSQL, where the
parametrized repository tests exercise it.
"""

import asyncio
import math
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shelfwise.catalog.models import Book
from shelfwise.platform.db import Base, create_engine, create_session_factory, fetch_page
from shelfwise.platform.pagination import MAX_PAGE_SIZE
from tests.factories import a_book, a_tenant, an_author

ROWS = 60


@pytest.fixture(scope="module")
def paging_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite file holding books with ids 1 to ROWS."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('paging') / 'books.db'}"

    async def fill() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with create_session_factory(engine)() as session:
            # Paging is tenant-blind: these sessions have no tenant walls, so rows name theirs.
            tenant = a_tenant("paging")
            session.add(tenant)
            await session.flush()
            author = an_author(tenant_id=tenant.id)
            books = [
                a_book(number, author=author, tenant_id=tenant.id) for number in range(1, ROWS + 1)
            ]
            session.add_all(books)
            await session.commit()
        await engine.dispose()

    asyncio.run(fill())
    yield url


async def page_through(url: str, total: int, limit: int) -> list[list[int]]:
    """The ids on each page of "the first ``total`` books", ``limit`` per page."""
    engine = create_engine(url)
    pages: list[list[int]] = []
    try:
        async with create_session_factory(engine)() as session:
            matches = select(Book.id).where(Book.id <= total).order_by(Book.id)
            offset = 0
            while True:
                page = await fetch_page(session, matches, limit, offset)
                assert page.total == total
                if not page.items:
                    return pages
                pages.append(list(page.items))
                offset += limit
    finally:
        await engine.dispose()


@settings(database=None, derandomize=True, max_examples=25)
@given(total=st.integers(0, ROWS), limit=st.integers(1, MAX_PAGE_SIZE))
def test_pages_cover_every_row_exactly_once(
    paging_database_url: str, total: int, limit: int
) -> None:
    pages = asyncio.run(page_through(paging_database_url, total, limit))

    assert [row for page in pages for row in page] == list(range(1, total + 1))
    assert len(pages) == math.ceil(total / limit)
    assert all(len(page) == limit for page in pages[:-1])
