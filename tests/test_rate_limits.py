"""Each tenant's limits through the API: 429 problems with their headers, plans and
overrides, route costs, the concurrency cap, Redis shared and Redis gone, and the metrics."""

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shelfwise.catalog.models import Author
from shelfwise.identity.onboarding import open_tenant
from shelfwise.limits.plans import TenantLimits
from shelfwise.platform.db import create_session_factory
from shelfwise.platform.rate_limit import LocalLimiter, RateLimiter
from shelfwise.platform.resilience import CircuitBreaker
from shelfwise.platform.settings import CacheSettings, Settings
from shelfwise.tenancy.config import InvalidSettingError, TenantConfig
from shelfwise.tenancy.context import system_context
from shelfwise.tenancy.models import Plan
from tests import factories
from tests.conftest import client_for
from tests.factories import Tenants, book_payload, set_tenant_setting
from tests.observe import samples
from tests.test_caching import started

AUTHOR = {"name": "Ursula K. Le Guin"}


async def test_over_its_quota_a_tenant_gets_a_429_problem_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 3)
    allowed = [await client.post("/authors", json=AUTHOR) for _ in range(3)]

    refused = await client.post("/authors", json=AUTHOR)

    assert [response.status_code for response in allowed] == [201] * 3
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 120
    assert refused.headers["ratelimit-policy"] == '"tenant";q=3;w=60'
    assert re.fullmatch(r'"tenant";r=0;t=\d+', refused.headers["ratelimit"])
    async with create_session_factory(engine)() as session:
        with system_context("test: count every tenant's authors"):
            assert await session.scalar(select(func.count()).select_from(Author)) == 3


async def test_every_counted_response_says_what_is_left(
    app: FastAPI, client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 50)
    first, second = await client.get("/authors"), await client.get("/authors")

    assert first.headers["ratelimit-policy"] == '"tenant";q=50;w=60'
    assert first.headers["ratelimit"].startswith('"tenant";r=49;')
    assert second.headers["ratelimit"].startswith('"tenant";r=48;')
    # Routes that act for no tenant are not counted: no fields.
    assert "ratelimit" not in (await anonymous_client.get("/health")).headers


async def test_one_tenant_at_its_limit_leaves_the_other_untouched(
    app: FastAPI, client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 2)
    for _ in range(3):
        await client.get("/authors")

    assert (await client.get("/authors")).status_code == 429
    assert (await other_client.get("/authors")).status_code == 200


async def test_an_order_costs_five_units(app: FastAPI, client: httpx.AsyncClient) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 10)
    author = (await client.post("/authors", json=AUTHOR)).json()
    book = (await client.post("/books", json=book_payload(author["id"]))).json()
    await client.put(f"/books/{book['id']}/stock", json={"quantity": 10})
    order = {"lines": [{"book_id": book["id"], "quantity": 1}]}

    placed = await client.post("/orders", json=order)  # 3 spent before: 8
    second = await client.post("/orders", json=order)  # 13 > 10
    read = await client.get("/authors")  # 9

    assert placed.status_code == 201
    assert placed.headers["ratelimit"].startswith('"tenant";r=2;')
    assert second.status_code == 429
    assert read.status_code == 200
    costs = app.openapi()["paths"]["/orders"]["post"]["x-rate-limit-cost"]
    assert costs == 5


async def test_requests_over_the_concurrency_cap_are_refused(
    app: FastAPI, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    await set_tenant_setting(app, "limits.concurrent_requests", 1)
    caps = app.state.tenant_limits.caps

    with caps.hold(str(tenants.a.id), 1):  # as a request still running would
        refused = await client.get("/authors")
    after = await client.get("/authors")

    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_concurrent_requests"
    assert refused.headers["retry-after"] == "1"
    assert after.status_code == 200


async def test_plans_set_the_quota_and_a_tenant_override_wins(
    app: FastAPI, engine: AsyncEngine, tenants: Tenants
) -> None:
    async with create_session_factory(engine)() as session:
        free, enterprise = [
            await open_tenant(
                session,
                slug=plan.value,
                name=plan.value,
                plan=plan,
                email=f"{plan}@example.com",
                password="a long enough password",
            )
            for plan in (Plan.FREE, Plan.ENTERPRISE)
        ]
    limits = app.state.tenant_limits
    await set_tenant_setting(app, "limits.requests_per_minute", 42)  # tenant A (pro)

    # The series' tiers: 1,000 and 10,000 requests a minute.
    assert (await limits.policy(free.id)).quota.limit == 1_000
    assert (await limits.policy(enterprise.id)).quota.limit == 100_000
    assert (await limits.policy(tenants.b.id)).quota.limit == 10_000
    assert (await limits.policy(tenants.a.id)).quota.limit == 42


@pytest.mark.parametrize("value", [0, -1, 10**12, "1000", 1.5, True, [1]])
async def test_an_override_out_of_bounds_is_refused(app: FastAPI, value: object) -> None:
    with pytest.raises(InvalidSettingError):
        await set_tenant_setting(app, "limits.requests_per_minute", value)  # type: ignore[arg-type]


async def test_processes_sharing_a_redis_share_one_quota(
    app_settings: Settings,
    redis_cache_settings: CacheSettings,
    tenants: Tenants,
    spans: InMemorySpanExporter,
) -> None:
    settings = app_settings.model_copy(update={"cache": redis_cache_settings})
    async with started(settings, spans) as one, started(settings, spans) as two:
        await set_tenant_setting(one, "limits.requests_per_minute", 4)
        async with clients(one, two, tenant=tenants.a) as pair:
            answers = [await pair[n % 2].get("/authors") for n in range(8)]

    assert [answer.status_code for answer in answers] == [200] * 4 + [429] * 4


async def test_without_redis_limits_fail_open_to_each_process_never_to_a_5xx(
    app_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> None:
    gone = CacheSettings(redis_url=SecretStr("unix:///nonexistent/redis.sock"))
    settings = app_settings.model_copy(update={"cache": gone})
    async with started(settings, spans) as app:
        await set_tenant_setting(app, "limits.requests_per_minute", 3)
        async with (
            clients(app, tenant=tenants.a) as (client,),
            clients(app, tenant=None) as (scraper,),
        ):
            answers = [await client.get("/authors") for _ in range(5)]
            exposition = (await scraper.get("/metrics")).text

    assert [answer.status_code for answer in answers] == [200] * 3 + [429] * 2
    decisions = samples(exposition, "shelfwise_rate_limit_decisions_total")
    local = {("plan", "pro"), ("limiter", "local")}
    assert decisions[frozenset(local | {("outcome", "allowed")})] == 3
    assert decisions[frozenset(local | {("outcome", "rate_limited")})] == 2
    assert samples(exposition, "shelfwise_rate_limit_redis_errors_total")[frozenset()] >= 1


@contextlib.asynccontextmanager
async def clients(
    *apps: FastAPI, tenant: factories.TestTenant | None
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client of each app, signed in as ``tenant``'s user (``None``: anonymous)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(client_for(app, tenant)) for app in apps]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_old_policy_serves_while_the_new_one_is_read(
    app: FastAPI, tenants: Tenants
) -> None:
    clock = Clock()
    state = app.state
    limits = TenantLimits(
        state.database,
        TenantConfig({}, 0),
        state.tenant_limits.limiter,
        ttl_seconds=30,
        clock=clock,
    )
    first = await limits.policy(tenants.a.id)
    await set_tenant_setting(app, "limits.requests_per_minute", 7)
    clock.now += 31

    stale = await limits.policy(tenants.a.id)
    async with asyncio.timeout(5):
        while (fresh := await limits.policy(tenants.a.id)) == stale:
            await asyncio.sleep(0.01)

    assert first is not None and stale is not None and fresh is not None
    assert (first.quota.limit, stale.quota.limit, fresh.quota.limit) == (10_000, 10_000, 7)


class HungDatabase:
    """A database whose sessions never open."""

    @contextlib.asynccontextmanager
    async def session(self, read_only: bool = False) -> AsyncIterator[None]:
        await asyncio.Event().wait()
        yield


async def test_a_policy_the_database_cannot_give_in_time_lets_the_request_through(
    tenants: Tenants,
) -> None:
    limiter = RateLimiter(None, LocalLimiter(), CircuitBreaker("redis"))
    database: Any = HungDatabase()
    limits = TenantLimits(database, TenantConfig({}, 0), limiter, ttl_seconds=30)

    started = time.monotonic()
    policy = await limits.policy(tenants.a.id)
    await limits.close()

    assert policy is None
    assert time.monotonic() - started < 1
    assert limits.unknown_policies == 1
