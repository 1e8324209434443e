"""Small, deterministic factories for test data: sensible defaults, explicit overrides.

``number`` picks one of a family of distinct valid objects, e.g. ``a_book(2)`` is "Book 2" with
ISBN 9780000000026. There is no randomness and no hidden counter, so a test reads the same,
and builds the same data, whatever ran before it.
"""

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncEngine

from shelfwise.catalog.models import Author, Book
from shelfwise.catalog.service import NewBook
from shelfwise.identity.models import User
from shelfwise.identity.onboarding import set_tenant_status
from shelfwise.platform.db import create_engine, create_session_factory
from shelfwise.tenancy.context import system_context
from shelfwise.tenancy.models import Plan, Tenant, TenantStatus

# Every test user's password; its hash is computed once per test run (see conftest).
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestTenant:
    """A tenant in the test database, and its one user."""

    id: UUID
    slug: str
    user_id: int
    email: str


@dataclass(frozen=True)
class Tenants:
    """The two tenants every database test has: A (the test's own) and B (the other one)."""

    a: TestTenant
    b: TestTenant


def a_tenant(slug: str, **overrides: Any) -> Tenant:
    """An unsaved, active tenant on the pro plan."""
    defaults = {"slug": slug, "name": slug.title(), "plan": Plan.PRO}
    return Tenant(**(defaults | {"status": TenantStatus.ACTIVE} | overrides))


async def seed_tenants(engine: AsyncEngine, password_hash: str) -> Tenants:
    """Tenants "alpha" (A) and "beta" (B), each with a user, as an operator would add them."""
    seeded = []
    async with create_session_factory(engine)() as session:
        with system_context("tests: seed tenants"):
            for slug in ("alpha", "beta"):
                tenant = a_tenant(slug)
                session.add(tenant)
                await session.flush()
                user = User(
                    tenant_id=tenant.id, email=f"{slug}@example.com", password_hash=password_hash
                )
                session.add(user)
                await session.flush()
                seeded.append(TestTenant(tenant.id, slug, user.id, user.email))
            await session.commit()
    return Tenants(*seeded)


def isbn13(number: int) -> str:
    """A valid ISBN-13 for ``number`` (0 to 999,999,999): 978, nine digits, check digit."""
    return with_isbn13_check_digit(f"978{number:09d}")


def with_isbn13_check_digit(first_12_digits: str) -> str:
    """``first_12_digits`` and their check digit, computed here rather than by the code under
    test: weights 1, 3, 1, 3, ..., and the total must be a multiple of 10."""
    weighted = (int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(first_12_digits))
    return first_12_digits + str(-sum(weighted) % 10)


def an_author(**overrides: Any) -> Author:
    """An unsaved author."""
    return Author(**({"name": "Ursula K. Le Guin"} | overrides))


def a_book(number: int = 1, **overrides: Any) -> Book:
    """An unsaved book priced 12.50 USD, by a new ``an_author()`` unless one is given."""
    defaults: dict[str, Any] = {
        "isbn": isbn13(number),
        "title": f"Book {number}",
        "price_amount": Decimal("12.50"),
        "price_currency": "USD",
    }
    if "author" not in overrides and "author_id" not in overrides:
        defaults["author"] = an_author()
    return Book(**(defaults | overrides))


def new_book(number: int = 1, **overrides: Any) -> NewBook:
    """What a caller passes to ``BookService.create_book``: by author 1, priced 9.99 USD."""
    book = NewBook(
        isbn=isbn13(number),
        title=f"Book {number}",
        author_id=1,
        price_amount=Decimal("9.99"),
        price_currency="USD",
    )
    return replace(book, **overrides)


def book_payload(author_id: int, number: int = 1, **overrides: Any) -> dict[str, Any]:
    """The JSON body of ``POST /books``."""
    payload = {
        "isbn": isbn13(number),
        "title": f"Book {number}",
        "author_id": author_id,
        "price": {"amount": "12.50", "currency": "USD"},
    }
    return payload | overrides


async def set_status(owner_url: str, slug: str, status: TenantStatus) -> None:
    """Suspend or reactivate a tenant, as the operator command does."""
    engine = create_engine(owner_url)
    try:
        async with create_session_factory(engine)() as session:
            await set_tenant_status(session, slug, status)
    finally:
        await engine.dispose()


async def set_tenant_setting(app: FastAPI, key: str, value: JsonValue) -> None:
    """Override ``key`` for the current tenant in ``app``'s database, as ``config-set`` does.
    Call it before the tenant's first request: a process reads a tenant's limits once per TTL."""
    async with app.state.database.session() as session:
        await app.state.tenant_config.set(session, key, value)


async def a_stocked_book(
    client: httpx.AsyncClient, copies: int, *, number: int = 1, price: str = "12.50"
) -> int:
    """Through the API, as the client's tenant: a new author's book at ``price`` USD with
    ``copies`` in stock; returns its id."""
    author = await client.post("/authors", json={"name": f"Author {number}"})
    payload = book_payload(author.json()["id"], number, price={"amount": price, "currency": "USD"})
    book = await client.post("/books", json=payload)
    assert book.status_code == 201, book.text
    book_id: int = book.json()["id"]
    stocked = await client.put(f"/books/{book_id}/stock", json={"quantity": copies})
    assert stocked.status_code == 200, stocked.text
    return book_id


async def stock_of(client: httpx.AsyncClient, book_id: int) -> int:
    """Through the API: how many copies of the book can be ordered."""
    quantity: int = (await client.get(f"/books/{book_id}/stock")).json()["quantity"]
    return quantity


async def raise_limits(app: FastAPI, requests: int) -> None:
    """Let the current tenant send ``requests`` at once, for tests that race them (part 15's
    limits would answer most with 429)."""
    await set_tenant_setting(app, "limits.concurrent_requests", requests)
    await set_tenant_setting(app, "limits.requests_per_second", 10 * requests)
    await set_tenant_setting(app, "limits.requests_per_minute", 100 * requests)
