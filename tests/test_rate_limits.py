"""Each tenant's limits through the API: 429 problems with their headers, plans and
overrides, route costs, the concurrency cap, Redis shared and Redis gone, and the metrics."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import Depends, FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shelfwise.catalog.models import Author
from shelfwise.identity.dependencies import authenticate
from shelfwise.identity.onboarding import open_tenant
from shelfwise.identity.service import AuthService
from shelfwise.identity.tokens import Principal, TokenSigner
from shelfwise.limits.middleware import limit_fields
from shelfwise.limits.plans import TenantLimits, TenantPolicy
from shelfwise.platform.db import DatabaseUnavailableError, create_session_factory
from shelfwise.platform.rate_limit import Decision, LocalLimiter, Quota, RateLimiter
from shelfwise.platform.resilience import CircuitBreaker
from shelfwise.platform.settings import CacheSettings, Settings
from shelfwise.tenancy.config import InvalidSettingError, TenantConfig
from shelfwise.tenancy.context import system_context
from shelfwise.tenancy.models import Plan
from tests import factories
from tests.clocks import Clock
from tests.conftest import client_for, started
from tests.factories import Tenants, book_payload, set_tenant_setting
from tests.observe import LogLines, samples

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
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 120
    assert refused.headers["ratelimit-policy"] == '"minute";q=3;w=60, "second";q=200;w=1'
    # For the quota that refused, t is the same wait as Retry-After (the draft: Retry-After
    # not earlier); the second's quota has room, and says when its window ends.
    assert refused.headers["ratelimit"] == f'"minute";r=0;t={wait}, "second";r=197;t=1'
    async with create_session_factory(engine)() as session:
        with system_context("test: count every tenant's authors"):
            assert await session.scalar(select(func.count()).select_from(Author)) == 3


async def test_every_counted_response_says_what_is_left(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 50)
    first, second = await client.get("/authors"), await client.head("/authors")
    # Probes and public routes act for no tenant: not counted, even with a token.
    uncounted = [await client.get(path) for path in ("/health", "/problems/rate_limited")]
    third = await client.get("/authors")

    assert first.headers["ratelimit-policy"] == '"minute";q=50;w=60, "second";q=200;w=1'
    assert first.headers["ratelimit"].startswith('"minute";r=49;')
    assert second.headers["ratelimit"].startswith('"minute";r=48;')  # HEAD costs as GET
    assert third.headers["ratelimit"].startswith('"minute";r=47;')
    assert [("ratelimit" in response.headers) for response in uncounted] == [False, False]


async def test_one_tenant_at_its_limit_leaves_the_other_untouched(
    app: FastAPI, client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 2)
    for _ in range(3):
        await client.get("/authors")

    assert (await client.get("/authors")).status_code == 429
    assert (await other_client.get("/authors")).status_code == 200


async def test_a_route_that_costs_more_than_the_whole_quota_spends_all_of_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 4)  # an order costs 5
    order = {"lines": [{"book_id": 999_999, "quantity": 1}]}

    placed = await client.post("/orders", json=order)
    after = await client.get("/authors")

    assert placed.status_code == 404  # admitted: the book does not exist
    assert placed.headers["ratelimit"].startswith('"minute";r=0;')
    assert after.status_code == 429


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
    assert placed.headers["ratelimit"].startswith('"minute";r=2;')
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

    async def quotas(tenant_id: UUID) -> list[tuple[int, int]]:
        policy = await limits.policy(tenant_id)
        assert policy is not None
        return [(quota.limit, quota.window_seconds) for quota in policy.quotas]

    # The series' tiers: 1,000 and 10,000 requests a minute; 1.2 times that rate a second.
    assert await quotas(free.id) == [(1_000, 60), (20, 1)]
    assert await quotas(tenants.b.id) == [(10_000, 60), (200, 1)]
    assert await quotas(enterprise.id) == [(100_000, 60), (2_000, 1)]
    assert await quotas(tenants.a.id) == [(42, 60), (200, 1)]


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
    pro = {("plan", "pro")}
    assert decisions[frozenset(pro | {("counted_by", "local"), ("outcome", "allowed")})] == 3
    assert decisions[frozenset(pro | {("counted_by", "local"), ("outcome", "rate_limited")})] == 1
    assert decisions[frozenset(pro | {("counted_by", "memory"), ("outcome", "rate_limited")})] == 1
    assert samples(exposition, "shelfwise_rate_limit_redis_errors_total")[frozenset()] >= 1


@contextlib.asynccontextmanager
async def clients(
    *apps: FastAPI, tenant: factories.TestTenant | None
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client of each app, signed in as ``tenant``'s user (``None``: anonymous)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(client_for(app, tenant)) for app in apps]


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
    first = await read_at_last(limits, tenants.a.id)
    await set_tenant_setting(app, "limits.requests_per_minute", 7)
    clock.now += 31

    stale = await limits.policy(tenants.a.id)
    async with asyncio.timeout(5):
        while (fresh := await limits.policy(tenants.a.id)) == stale:
            await asyncio.sleep(0.01)

    assert first is not None and stale is not None and fresh is not None
    limits_read = [policy.quotas[0].limit for policy in (first, stale, fresh)]
    assert limits_read == [10_000, 10_000, 7]


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


async def test_a_refusal_is_logged_with_its_tenant(
    app: FastAPI, client: httpx.AsyncClient, tenants: Tenants, log_lines: LogLines
) -> None:
    await set_tenant_setting(app, "limits.requests_per_minute", 1)
    await client.get("/authors")

    refused = await client.get("/authors")

    (line,) = log_lines.where(problem="rate_limited")
    assert refused.status_code == 429
    assert (line["tenant_id"], line["user_id"]) == (str(tenants.a.id), tenants.a.user_id)


async def test_a_tenant_over_its_quota_is_refused_before_the_shared_queue(
    app_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> None:
    settings = app_settings.model_copy(deep=True)
    settings.resilience.max_in_flight, settings.resilience.max_queued = 1, 0
    release = asyncio.Event()

    async def slow() -> dict[str, str]:
        await release.wait()
        return {}

    async with started(settings, spans) as app:
        app.add_api_route("/test/slow", slow, dependencies=[Depends(authenticate)])
        await set_tenant_setting(app, "limits.requests_per_minute", 1)
        async with clients(app, tenant=tenants.a) as (a,), clients(app, tenant=tenants.b) as (b,):
            holding = asyncio.create_task(a.get("/test/slow"))  # A's one unit, the one slot
            await asyncio.sleep(0.1)
            over_quota, shed = await a.get("/authors"), await b.get("/authors")
            release.set()
            await holding

    # A's request never reached the full queue: refused for its quota, not shed as B's was.
    assert (over_quota.status_code, over_quota.json()["code"]) == (429, "rate_limited")
    assert (shed.status_code, shed.json()["code"]) == (503, "overloaded")


async def test_a_request_verifies_its_token_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    verify = AuthService.verify

    def counting_verify(signer: TokenSigner, token: str) -> Principal:
        verified.append(token)
        return verify(signer, token)

    monkeypatch.setattr(AuthService, "verify", staticmethod(counting_verify))

    assert (await client.get("/authors")).status_code == 200
    assert len(verified) == 1


async def test_a_slot_is_freed_however_the_request_ends(
    app: FastAPI, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    caps = app.state.tenant_limits.caps

    ends = [
        await client.get("/books/999999"),
        await client.post("/authors", json={"name": ""}),
        await client.get("/authors"),
    ]

    assert [response.status_code for response in ends] == [404, 422, 200]
    assert caps.running(str(tenants.a.id)) == 0


async def test_deciding_that_fails_lets_the_request_through_and_is_counted(
    app: FastAPI,
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    tenants: Tenants,
) -> None:
    async def broken(key: str, quotas: tuple[Quota, ...], cost: int) -> Decision:
        raise RuntimeError("a bug in the limiter")

    app.state.tenant_limits.limiter.take = broken

    answer = await client.get("/authors")
    exposition = (await anonymous_client.get("/metrics")).text

    assert answer.status_code == 200
    assert "ratelimit" not in answer.headers
    assert app.state.tenant_limits.caps.running(str(tenants.a.id)) == 0
    assert samples(exposition, "shelfwise_rate_limit_errors_total")[frozenset()] == 1


async def test_while_its_policy_is_unknown_a_tenant_is_served_under_the_free_cap(
    app: FastAPI, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    database: Any = HungDatabase()
    limiter = app.state.tenant_limits.limiter
    limits = TenantLimits(database, TenantConfig({}, 0), limiter, ttl_seconds=30)
    app.state.tenant_limits = limits

    served = await client.get("/authors")
    with limits.caps.hold(str(tenants.a.id), 2), limits.caps.hold(str(tenants.a.id), 2):
        capped = await client.get("/authors")
    await limits.close()

    assert served.status_code == 200
    assert "ratelimit" not in served.headers  # the quota was not counted
    assert (capped.status_code, capped.json()["code"]) == (429, "too_many_concurrent_requests")
    assert limits.unknown_policies == 2


def test_the_fields_follow_the_ietf_draft_syntax() -> None:
    clock = Clock(1_800_000_015.0)  # 15 s into a minute
    limiter = LocalLimiter(clock)
    quotas = (Quota(2, 60, "minute"), Quota(5, 1, "second"))
    allowed = limiter.take("a", quotas, 1)
    limiter.take("a", quotas, 1)
    refused = limiter.take("a", quotas, 1)

    assert limit_fields(allowed) == {
        "RateLimit-Policy": '"minute";q=2;w=60, "second";q=5;w=1',
        "RateLimit": '"minute";r=1;t=45, "second";r=4;t=1',
    }
    # 2 spent at 15 s: one fits when half of them still count, 30 s into the next minute.
    assert refused.retry_after_seconds == 75
    assert limit_fields(refused)["RateLimit"] == '"minute";r=0;t=75, "second";r=3;t=1'


async def read_at_last(limits: TenantLimits, tenant_id: UUID) -> TenantPolicy | None:
    """The tenant's policy once its first read is done: a request waits only 0.25 s for it,
    and a loaded machine can take longer (the read goes on in the background)."""
    async with asyncio.timeout(5):
        while (policy := await limits.policy(tenant_id)) is None:
            await asyncio.sleep(0.01)
    return policy


class FailingAfterFirst:
    """A database whose first session opens, and every later one finds it down."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.sessions = 0

    def session(self, read_only: bool = False) -> Any:
        self.sessions += 1
        if self.sessions > 1:
            raise DatabaseUnavailableError("The database is down.")
        return self._database.session(read_only=read_only)


async def test_a_policy_that_cannot_be_refreshed_is_kept_and_tried_again_a_ttl_later(
    app: FastAPI, tenants: Tenants
) -> None:
    clock = Clock()
    database = FailingAfterFirst(app.state.database)
    limiter = app.state.tenant_limits.limiter
    database_any: Any = database
    limits = TenantLimits(database_any, TenantConfig({}, 0), limiter, ttl_seconds=30, clock=clock)
    first = await read_at_last(limits, tenants.a.id)
    clock.now += 31

    kept = [await limits.policy(tenants.a.id)]  # starts a refresh, which fails
    await asyncio.sleep(0.05)
    kept += [await limits.policy(tenants.a.id) for _ in range(5)]  # no new try within a TTL
    await asyncio.sleep(0.05)
    sessions_within_the_ttl = database.sessions
    clock.now += 31
    await limits.policy(tenants.a.id)
    await asyncio.sleep(0.05)

    assert first is not None and all(policy == first for policy in kept)
    assert sessions_within_the_ttl == 2
    assert database.sessions == 3


class CountingDatabase:
    """A database that counts the sessions open at once."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.open = self.most_open = 0

    @contextlib.asynccontextmanager
    async def session(self, read_only: bool = False) -> AsyncIterator[Any]:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await asyncio.sleep(0.02)  # long enough for every read to be under way at once
            async with self._database.session(read_only=read_only) as session:
                yield session
        finally:
            self.open -= 1


async def test_policy_reads_hold_at_most_two_connections_however_many_tenants_need_one(
    app: FastAPI, engine: AsyncEngine
) -> None:
    async with create_session_factory(engine)() as session:
        new_tenants = [
            await open_tenant(
                session,
                slug=f"t{number}",
                name=f"T{number}",
                plan=Plan.FREE,
                email=f"t{number}@example.com",
                password="a long enough password",
            )
            for number in range(6)
        ]
    database = CountingDatabase(app.state.database)
    database_any: Any = database
    limiter = app.state.tenant_limits.limiter
    limits = TenantLimits(database_any, TenantConfig({}, 0), limiter, ttl_seconds=30)

    policies = await asyncio.gather(*(limits.policy(tenant.id) for tenant in new_tenants))

    assert all(policy is not None for policy in policies)
    assert database.most_open == 2
