"""Wall 1, the ORM filter, and the keys that bind rows to one tenant, on both databases."""

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.catalog.models import Author, Book
from shelfwise.tenancy.context import NoTenantError, system_context, tenant_context
from shelfwise.tenancy.orm_filter import CrossTenantWriteError
from tests.factories import Tenants, a_book, an_author

T = TypeVar("T")


async def outside_any_tenant(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in an empty context, like a task started by code that set no tenant."""
    return await asyncio.create_task(work, context=contextvars.Context())


async def add_one_book_each(session: AsyncSession, tenants: Tenants) -> None:
    """Book 1 for tenant A, book 2 for tenant B, each with its own author."""
    for tenant, number in ((tenants.a, 1), (tenants.b, 2)):
        with tenant_context(tenant.id):
            session.add(a_book(number))
            await session.commit()


async def test_queries_see_only_the_current_tenants_rows(
    session: AsyncSession, tenants: Tenants
) -> None:
    await add_one_book_each(session, tenants)

    with tenant_context(tenants.b.id):
        titles = (await session.scalars(select(Book.title))).all()
        authors = (await session.scalars(select(Author.id).join(Book))).all()
        counted = await session.scalar(select(func.count()).select_from(select(Book).subquery()))
        renamed = await session.execute(update(Book).values(title="Renamed").returning(Book.id))

    assert titles == ["Book 2"]
    assert len(authors) == 1
    assert counted == 1  # the filter reaches into subqueries
    assert len(renamed.all()) == 1  # and into ORM updates: A's book kept its title
    with tenant_context(tenants.a.id):
        assert await session.scalar(select(Book.title)) == "Book 1"


@pytest.mark.parametrize(
    "statement",
    [select(Book), select(func.count()).select_from(select(Book).subquery()), text("SELECT 1")],
    ids=["an ORM query", "a count over a subquery", "raw SQL"],
)
async def test_a_statement_without_a_tenant_fails_instead_of_seeing_every_row(
    session: AsyncSession, tenants: Tenants, statement: Any
) -> None:
    await add_one_book_each(session, tenants)

    with pytest.raises(NoTenantError):
        await outside_any_tenant(session.execute(statement))


async def test_a_system_context_sees_every_tenant_and_says_so_in_the_log(
    session: AsyncSession, tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    await add_one_book_each(session, tenants)

    with system_context("tests: count every tenant's books"):
        counted = await session.scalar(select(func.count()).select_from(Book))

    assert counted == 2
    assert "system context entered: tests: count every tenant's books" in caplog.text


async def test_new_rows_are_stamped_with_the_current_tenant(
    session: AsyncSession, tenants: Tenants
) -> None:
    with tenant_context(tenants.b.id):
        book = a_book(1)
        session.add(book)
        await session.flush()

    assert book.tenant_id == book.author.tenant_id == tenants.b.id


async def test_a_row_for_another_tenant_is_refused(session: AsyncSession, tenants: Tenants) -> None:
    session.add(an_author(tenant_id=tenants.b.id))  # the test runs as tenant A

    with pytest.raises(CrossTenantWriteError):
        await session.flush()


async def test_an_isbn_is_unique_per_tenant_not_globally(
    session: AsyncSession, tenants: Tenants
) -> None:
    for tenant in (tenants.a, tenants.b):
        with tenant_context(tenant.id):
            session.add(a_book(1))
            await session.commit()

    with tenant_context(tenants.a.id):
        session.add(a_book(1))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_the_database_refuses_a_book_by_another_tenants_author(
    session: AsyncSession, tenants: Tenants
) -> None:
    author = an_author()
    session.add(author)  # tenant A's
    await session.commit()

    # Even code that steps past wall 1 cannot make B's book point at A's author.
    with system_context("tests: a cross-tenant reference"):
        session.add(a_book(1, author_id=author.id, tenant_id=tenants.b.id))
        with pytest.raises(IntegrityError):
            await session.commit()
