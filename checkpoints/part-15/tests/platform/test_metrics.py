"""Prometheus metrics at /metrics: request times and problems, database state, bounded labels."""

import asyncio
import sys

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from shelfwise.main import create_app
from shelfwise.platform.db import DatabaseUnavailableError
from shelfwise.platform.metrics import NO_ROUTE
from shelfwise.platform.settings import ResilienceSettings, Settings
from tests.conftest import client_for
from tests.factories import Tenants
from tests.observe import samples

DURATION_COUNT = "shelfwise_http_request_duration_seconds_count"
PROBLEMS = "shelfwise_problems_total"


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


async def test_requests_are_counted_by_route_template_never_by_path(
    client: httpx.AsyncClient,
) -> None:
    for book_id in range(1, 31):
        await client.get(f"/books/{book_id}")
    for n in range(10):
        await client.get(f"/no-such-page/{n}")
    await client.head("/books/1")  # answered as a GET, counted as the HEAD it was

    counts = samples(await scrape(client), DURATION_COUNT)

    assert counts[labels(method="GET", route="/books/{book_id}", status_class="4xx")] == 30
    assert counts[labels(method="GET", route=NO_ROUTE, status_class="4xx")] == 10
    assert counts[labels(method="HEAD", route="/books/{book_id}", status_class="4xx")] == 1
    assert not any("/books/1" in dict(key)["route"] for key in counts)


async def test_problems_are_counted_by_route_and_code(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    await client.get("/books/999")
    await client.get("/books/998")
    await anonymous_client.get("/books")

    problems = samples(await scrape(client), PROBLEMS)

    assert problems[labels(route="/books/{book_id}", code="book_not_found")] == 2
    assert problems[labels(route="/books", code="invalid_token")] == 1


# Paths and methods a scanner sends; each would be a new series if labels came from the URL.
HOSTILE_REQUESTS = [
    ("GET", "/books/1%00"),
    ("GET", "/wp-login.php"),
    ("GET", "/books/" + "9" * 500),
    ("POST", "/books/é/../../etc/passwd"),
    ("PROPFIND", "/books"),
    ("BREW", "/coffee"),
    ("get", "/books"),
    ("DELETE", "/books/{book_id}"),
]


async def test_no_request_adds_a_label_value_outside_the_fixed_sets(
    app: FastAPI, anonymous_client: httpx.AsyncClient
) -> None:
    for method, path in HOSTILE_REQUESTS:
        await anonymous_client.request(method, path)

    routes = {*app.openapi()["paths"], "/metrics", NO_ROUTE}
    for family in text_string_to_metric_families(await scrape(anonymous_client)):
        for sample in family.samples:
            assert sample.labels.get("route", NO_ROUTE) in routes
            assert sample.labels.get("method", "GET") in {"GET", "POST", "DELETE", "other"}


async def test_each_app_counts_only_its_own_requests(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    other = create_app(app.state.settings)
    await client.get("/books/1")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://test"
    ) as other_client:
        assert samples(await scrape(other_client), DURATION_COUNT) == {}


async def test_the_circuit_state_and_the_pool_are_exported(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    breaker = app.state.database.breaker
    before = samples(await scrape(client), "shelfwise_circuit_state")
    for _ in range(app.state.settings.resilience.breaker_failures):
        with pytest.raises(ConnectionRefusedError), breaker.guard():
            raise ConnectionRefusedError  # what asyncpg raises when nothing listens

    after = samples(await scrape(client), "shelfwise_circuit_state")

    assert before[labels(server="primary", state="closed")] == 1
    assert after[labels(server="primary", state="closed")] == 0
    assert after[labels(server="primary", state="open")] == 1
    pool = samples(await scrape(client), "shelfwise_db_pool_connections")
    assert set(pool) == {
        labels(server="primary", state="checked_out"),
        labels(server="primary", state="idle"),
    }


async def test_shed_requests_are_counted_and_the_scrape_still_gets_through(
    app_settings: Settings, tenants: Tenants
) -> None:
    settings = app_settings.model_copy(
        update={"resilience": ResilienceSettings(max_in_flight=1, max_queued=0)}
    )
    app = create_app(settings)
    release = asyncio.Event()

    async def slow() -> dict[str, str]:
        await release.wait()
        return {}

    app.add_api_route("/test/slow", slow, methods=["GET"])
    async with app.router.lifespan_context(app), client_for(app, tenants.a) as client:
        holder = asyncio.create_task(client.get("/test/slow"))
        await asyncio.sleep(0.05)  # the one slot is taken
        refused = await client.get("/books")
        exposition = await scrape(client)  # exempt from admission control
        release.set()
        await holder

    assert refused.status_code == 503
    assert samples(exposition, PROBLEMS)[labels(route=NO_ROUTE, code="overloaded")] == 1


async def test_a_database_outage_shows_as_its_problem_code(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def unreachable() -> None:
        raise DatabaseUnavailableError("The database cannot be reached.", retry_after_seconds=1)

    app.add_api_route("/test/outage", unreachable, methods=["GET"])
    await client.get("/test/outage")

    problems = samples(await scrape(client), PROBLEMS)
    assert problems[labels(route="/test/outage", code="database_unavailable")] == 1


@pytest.mark.skipif(sys.platform != "linux", reason="process metrics read /proc")
async def test_the_process_memory_is_exported(client: httpx.AsyncClient) -> None:
    (memory,) = samples(await scrape(client), "process_resident_memory_bytes").values()
    assert memory > 0
