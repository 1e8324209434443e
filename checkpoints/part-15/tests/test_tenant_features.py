"""Part 10 through the API: a tenant's negotiated discount, and a beta feature behind a flag."""

import asyncio
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from shelfwise.platform.db import create_session_factory
from shelfwise.tenancy.config import TenantConfig
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.flags import FeatureFlags, save_flag, set_denial
from shelfwise.tenancy.orm_filter import install_orm_filter
from tests.factories import Tenants, book_payload, isbn13, set_tenant_setting


async def a_stocked_book(client: httpx.AsyncClient) -> int:
    author = await client.post("/authors", json={"name": "Ursula K. Le Guin"})
    book = await client.post("/books", json=book_payload(author.json()["id"]))
    await client.put(f"/books/{book.json()['id']}/stock", json={"quantity": 100})
    return int(book.json()["id"])


async def discount_on_20_copies(client: httpx.AsyncClient, book_id: int) -> Decimal:
    quote = await client.post(
        "/orders/quote", json={"lines": [{"book_id": book_id, "quantity": 20}]}
    )
    assert quote.status_code == 200, quote.text
    return Decimal(quote.json()["discount_percent"])


async def test_a_tenants_negotiated_discount_applies_to_it_alone(
    app: FastAPI, client: httpx.AsyncClient, other_client: httpx.AsyncClient, tenants: Tenants
) -> None:
    mine, theirs = await a_stocked_book(client), await a_stocked_book(other_client)
    before = await discount_on_20_copies(client, mine)

    async with app.state.database.session_factory() as session:  # as tenant A
        await app.state.tenant_config.set(session, "orders.bulk_discount_tiers", [[20, "7.5"]])

    assert await discount_on_20_copies(client, mine) == Decimal("7.5") != before
    assert await discount_on_20_copies(other_client, theirs) == before


async def test_isbn_search_follows_the_flag_and_a_denial(
    app: FastAPI,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    tenants: Tenants,
) -> None:
    for each in (client, other_client):
        await a_stocked_book(each)
    hyphenated = "978-0-00-000001-9"
    assert isbn13(1) == hyphenated.replace("-", "")

    async def found(each: httpx.AsyncClient) -> int:
        response = await each.get("/books", params={"q": hyphenated})
        return int(response.json()["total"])

    assert (await found(client), await found(other_client)) == (0, 0)  # no such flag yet
    operator = create_session_factory(engine)
    install_orm_filter(operator)
    async with operator() as session:
        await save_flag(session, "catalog.isbn_search", rollout_percent=100)
        with tenant_context(tenants.a.id):
            await set_denial(session, "catalog.isbn_search", "contract forbids betas")
    app.state.feature_flags.invalidate()

    assert (await found(client), await found(other_client)) == (0, 1)


async def test_cold_caches_under_concurrency_take_no_second_connection(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # With nothing cached, every request reads the tenant's settings and flags. Read through a
    # session of their own, each request would hold two pooled connections at once, and 20
    # requests would wait for each other on a pool of 5 + 10 until its 30 s timeout (a 500).
    await set_tenant_setting(app, "limits.concurrent_requests", 20)
    book_id = await a_stocked_book(client)
    app.state.tenant_config = TenantConfig({}, ttl_seconds=0)
    app.state.feature_flags = FeatureFlags(ttl_seconds=0)
    line = {"lines": [{"book_id": book_id, "quantity": 1}]}

    answers = await asyncio.gather(
        *(client.post("/orders/quote", json=line) for _ in range(10)),
        *(client.get("/books", params={"q": "Book"}) for _ in range(10)),
    )

    assert [answer.status_code for answer in answers] == [200] * 20
