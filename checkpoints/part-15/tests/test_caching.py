"""Cached reads through the API: a hit runs no SQL, every write is seen at once (in every
process sharing the Redis), no tenant ever gets another's cached body, and a Redis that dies
or hangs costs a little time, never an error."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from shelfwise.cli import main
from shelfwise.platform.settings import CacheSettings, Settings
from shelfwise.tenancy.models import TenantStatus
from tests.conftest import client_for, started
from tests.factories import Tenants, book_payload, isbn13, set_status
from tests.observe import samples
from tests.redis_servers import started_redis


def sql_statements(spans: InMemorySpanExporter) -> list[str]:
    """The SQL the app ran since ``spans`` was last cleared (one span per statement)."""
    return [
        str(span.attributes["db.statement"])
        for span in spans.get_finished_spans()
        if span.attributes
        and "db.statement" in span.attributes
        and span.attributes.get("db.system") != "redis"
    ]


async def add_book(client: httpx.AsyncClient, number: int = 1) -> dict[str, Any]:
    author = await client.post("/authors", json={"name": "Ursula K. Le Guin"})
    created = await client.post("/books", json=book_payload(author.json()["id"], number))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.01)


async def test_a_cached_book_read_runs_no_sql(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    book = await add_book(client)
    first = await client.get(f"/books/{book['id']}")
    spans.clear()

    again = await client.get(f"/books/{book['id']}")

    assert again.status_code == 200
    assert again.json() == first.json() == book
    assert again.headers["content-type"] == "application/json"
    assert sql_statements(spans) == []


async def test_a_new_book_is_in_the_cached_list_at_once(client: httpx.AsyncClient) -> None:
    await add_book(client, 1)
    before = (await client.get("/books")).json()
    cached = (await client.get("/books")).json()

    await add_book(client, 2)
    after = (await client.get("/books")).json()

    assert cached == before
    assert (before["total"], after["total"]) == (1, 2)
    assert [book["title"] for book in after["items"]] == ["Book 1", "Book 2"]


async def test_an_import_and_a_new_author_are_seen_at_once(client: httpx.AsyncClient) -> None:
    book = await add_book(client, 1)
    assert (await client.get("/books")).json()["total"] == 1
    assert (await client.get("/authors")).json()["total"] == 1
    header = "isbn,title,author_id,price_amount,price_currency"
    csv = f"{header}\n{isbn13(2)},Imported,{book['author_id']},9.99,USD\n"

    imported = await client.post("/books/import", content=csv, headers={"content-type": "text/csv"})
    await client.post("/authors", json={"name": "Octavia E. Butler"})

    assert imported.json()["imported"] == 1, imported.text
    assert (await client.get("/books")).json()["total"] == 2
    assert (await client.get("/authors")).json()["total"] == 2


async def test_only_the_first_pages_in_common_sizes_are_cached(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await add_book(client)
    for params in ({"limit": 20, "offset": 0}, {"limit": 7, "offset": 0}, {"offset": 3}):
        await client.get("/books", params=params)
        spans.clear()
        again = await client.get("/books", params=params)
        assert again.status_code == 200
        ran_sql = sql_statements(spans) != []
        assert ran_sql is (params != {"limit": 20, "offset": 0}), params


async def test_a_missing_book_is_not_cached(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    assert (await client.get("/books/999")).status_code == 404
    spans.clear()
    assert (await client.get("/books/999")).status_code == 404
    assert sql_statements(spans) != []  # asked again: a refusal is never cached


async def test_another_tenant_never_gets_a_cached_body(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    book = await add_book(client)
    assert (await client.get(f"/books/{book['id']}")).status_code == 200
    assert (await client.get("/books")).json()["total"] == 1
    assert (await client.get(f"/authors/{book['author_id']}")).status_code == 200

    assert (await other_client.get(f"/books/{book['id']}")).status_code == 404
    assert (await other_client.get(f"/authors/{book['author_id']}")).status_code == 404
    assert (await other_client.get("/books")).json()["total"] == 0


async def test_searches_are_not_cached(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await add_book(client)
    await client.get("/books", params={"q": "Book"})
    spans.clear()
    found = await client.get("/books", params={"q": "Book"})
    assert found.json()["total"] == 1
    assert sql_statements(spans) != []


async def test_the_account_check_is_cached(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    book = await add_book(client)
    await client.get(f"/books/{book['id']}")
    spans.clear()
    await client.get(f"/books/{book['id']}/stock")
    assert not any("tenants" in statement for statement in sql_statements(spans))


async def test_a_refused_account_check_is_not_cached(
    client: httpx.AsyncClient, tenants: Tenants, database_url: str
) -> None:
    # Suspended before any request, then reactivated, both without telling the cache.
    await set_status(database_url, tenants.a.slug, TenantStatus.SUSPENDED)
    assert (await client.get("/books")).status_code == 403
    await set_status(database_url, tenants.a.slug, TenantStatus.ACTIVE)
    assert (await client.get("/books")).status_code == 200


async def test_lookups_are_counted_at_metrics(client: httpx.AsyncClient, app: FastAPI) -> None:
    book = await add_book(client)
    for _ in range(3):
        await client.get(f"/books/{book['id']}")
    async with client_for(app, None) as scraper:
        exposition = (await scraper.get("/metrics")).text
    lookups = samples(exposition, "shelfwise_cache_lookups_total")
    assert lookups[frozenset({("outcome", "l1_hit")})] >= 2
    assert lookups[frozenset({("outcome", "load")})] >= 1


@pytest.fixture
def redis_settings(app_settings: Settings, redis_cache_settings: CacheSettings) -> Settings:
    return app_settings.model_copy(update={"cache": redis_cache_settings})


async def test_a_write_in_one_process_is_seen_at_once_by_another(
    redis_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> None:
    async with started(redis_settings, spans) as one, started(redis_settings, spans) as two:
        reader, writer = client_for(one, tenants.a), client_for(two, tenants.a)
        async with reader, writer:
            assert (await reader.get("/books")).json()["total"] == 0
            await add_book(writer)

            async def reader_sees_it() -> bool:
                return bool((await reader.get("/books")).json()["total"] == 1)

            # Far sooner than the 5 s a process keeps its own copy: the new generation was
            # announced on the channel, and the reader's process dropped its copy.
            started_at = time.monotonic()
            await eventually(reader_sees_it)
            assert time.monotonic() - started_at < 1.0


async def test_redis_calls_are_traced_inside_the_request(
    redis_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> None:
    async with started(redis_settings, spans) as app, client_for(app, tenants.a) as client:
        book = await add_book(client)
        spans.clear()
        await client.get(f"/books/{book['id']}")

    finished = spans.get_finished_spans()
    (server,) = [span for span in finished if span.kind is SpanKind.SERVER]
    redis_spans = [s for s in finished if (s.attributes or {}).get("db.system") == "redis"]
    assert {span.name for span in redis_spans} >= {"GET", "SET"}
    assert {span.context.trace_id for span in redis_spans} == {server.context.trace_id}


async def test_a_suspension_by_the_cli_ends_the_cached_account_check_at_once(
    redis_settings: Settings,
    tenants: Tenants,
    spans: InMemorySpanExporter,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = redis_settings.cache
    assert cache.redis_url is not None
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", database_url)
    monkeypatch.setenv("SHELFWISE_CACHE_REDIS_URL", cache.redis_url.get_secret_value())
    monkeypatch.setenv("SHELFWISE_CACHE_CHANNEL", cache.channel)
    async with started(redis_settings, spans) as app, client_for(app, tenants.a) as client:
        assert (await client.get("/books")).status_code == 200
        assert (await client.get("/books")).status_code == 200  # the check is cached now

        assert await asyncio.to_thread(main, ["suspend-tenant", tenants.a.slug]) == 0

        async def refused() -> bool:
            response = await client.get("/books")
            return bool(response.status_code == 403)

        await eventually(refused, seconds=1.0)


async def test_the_cli_says_so_and_fails_when_it_cannot_tell_the_cache(
    tenants: Tenants,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with started_redis() as server:
        url = server.url
    # The server is gone: the suspension is made, and the operator is told what is missing.
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", database_url)
    monkeypatch.setenv("SHELFWISE_CACHE_REDIS_URL", url)

    assert await asyncio.to_thread(main, ["suspend-tenant", tenants.a.slug]) == 1

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "is suspended, but the cache's Redis did not answer" in error
    assert "run the command again" in error


async def test_a_hung_redis_costs_a_timeout_never_an_error(
    app_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> None:
    with started_redis() as server:
        cache = CacheSettings(redis_url=SecretStr(server.url), redis_timeout_seconds=0.2)
        settings = app_settings.model_copy(update={"cache": cache})
        async with started(settings, spans) as app, client_for(app, tenants.a) as client:
            book = await add_book(client)
            server.freeze()
            try:
                started_at = time.monotonic()
                responses = [await client.get(f"/books/{book['id']}") for _ in range(20)]
                elapsed = time.monotonic() - started_at
                created = await client.post("/books", json=book_payload(book["author_id"], 2))
            finally:
                server.thaw()
            async with client_for(app, None) as scraper:
                exposition = (await scraper.get("/metrics")).text

    assert {response.status_code for response in responses} == {200}
    assert created.status_code == 201
    assert elapsed < 2.0  # one 0.2 s timeout opened the circuit; then Redis is not called
    errors = samples(exposition, "shelfwise_cache_redis_errors_total")
    assert errors[frozenset()] >= 1
    circuit = samples(exposition, "shelfwise_circuit_state")
    assert circuit[frozenset({("server", "redis"), ("state", "open")})] == 1
