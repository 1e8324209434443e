"""Degrade, don't fail: on a real PostgreSQL that restarts, goes away, hangs or runs out of
connections, the API answers 503 problems with ``Retry-After`` — never a 500, never a hang —
and recovers on its own when the database does."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import make_url, text

from shelfwise.main import create_app
from shelfwise.platform.db import (
    Database,
    DatabaseConflictError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    create_engine,
    is_outage,
)
from shelfwise.platform.resilience import CircuitBreaker, CircuitState
from shelfwise.platform.settings import (
    AuthSettings,
    CacheSettings,
    DatabaseSettings,
    ResilienceSettings,
    Settings,
)
from tests.conftest import TEST_SECRET, client_for
from tests.databases import APP_ROLE, as_app_role, settings_for
from tests.factories import Tenants
from tests.faults import FaultyLink, faulty_link

# PostgreSQL only: the shared fixtures (database_url, tenants) on that one database.
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

# Short waits, so that each fault shows within a second.
TIMEOUTS = {
    "connect_timeout_seconds": 0.5,
    "statement_timeout_seconds": 0.5,
    "pool_timeout_seconds": 0.3,
}
BREAKER_FAILURES = 2
BREAKER_RESET_SECONDS = 0.5
# A test that would hang without the timeouts fails here instead.
NO_HANG_SECONDS = 10


@pytest.fixture
def owner_url(database_url: str) -> str:
    """The owner's URL of the test's empty database (the app logs in as ``APP_ROLE``)."""
    return database_url


@pytest.fixture
async def link(owner_url: str) -> AsyncIterator[FaultyLink]:
    async with faulty_link(owner_url) as link:
        yield link


def settings_through(link: FaultyLink, owner_url: str, **database: float) -> Settings:
    """The app's settings, its connections going through ``link``."""
    app_url = link.url_for(as_app_role(owner_url))
    tuned = settings_for(app_url, owner_url).model_dump() | TIMEOUTS | database
    return Settings(
        database=DatabaseSettings(**tuned),
        auth=AuthSettings(secret_key=TEST_SECRET),
        resilience=ResilienceSettings(
            breaker_failures=BREAKER_FAILURES, breaker_reset_seconds=BREAKER_RESET_SECONDS
        ),
        # Every request must reach the database here: a cached read would answer without it.
        cache=CacheSettings(enabled=False),
    )


@contextlib.asynccontextmanager
async def started(settings: Settings, tenants: Tenants) -> AsyncIterator[httpx.AsyncClient]:
    """Tenant A's client on a started app with ``settings``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app, tenants.a) as client:
        yield client


@pytest.fixture
async def api(
    link: FaultyLink, owner_url: str, tenants: Tenants
) -> AsyncIterator[httpx.AsyncClient]:
    """Tenant A's client, on an app whose database is on the other side of ``link``."""
    async with started(settings_through(link, owner_url), tenants) as client:
        yield client


def assert_unavailable(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_restarted_database_costs_no_request(
    api: httpx.AsyncClient, link: FaultyLink
) -> None:
    assert (await api.get("/books")).status_code == 200
    link.cut()  # every pooled connection is now dead

    assert (await api.get("/books")).status_code == 200


async def test_a_database_that_is_down_gets_503s_then_an_open_circuit_then_recovers(
    api: httpx.AsyncClient, link: FaultyLink
) -> None:
    assert (await api.get("/books")).status_code == 200
    await link.refuse()

    for _ in range(BREAKER_FAILURES):
        assert_unavailable(await api.get("/books"), "database_unavailable")
    assert_unavailable(await api.get("/books"), "circuit_open")
    assert_unavailable(await api.get("/health/ready"), "circuit_open")
    assert (await api.get("/health")).status_code == 200  # the process itself is fine

    await link.heal()
    await asyncio.sleep(BREAKER_RESET_SECONDS)
    assert (await api.get("/books")).status_code == 200
    assert (await api.get("/health/ready")).json() == {"status": "ok", "database": "ok"}


async def test_a_hung_database_gets_503s_within_the_timeouts_and_recovers(
    api: httpx.AsyncClient, link: FaultyLink
) -> None:
    assert (await api.get("/books")).status_code == 200
    link.hang()

    async with asyncio.timeout(NO_HANG_SECONDS):
        assert_unavailable(await api.get("/books"), "database_unavailable")
        link.cut()  # the pool's connection is stuck; a new one cannot connect either
        assert_unavailable(await api.get("/books"), "database_unavailable")
        ready = await api.get("/health/ready")  # the circuit may be open by now
        assert_unavailable(ready, ready.json().get("code", "database_unavailable"))
        assert ready.json()["code"] in {"database_unavailable", "circuit_open"}

    await link.heal()
    await asyncio.sleep(BREAKER_RESET_SECONDS)
    assert (await api.get("/books")).status_code == 200


async def test_a_full_pool_gets_503_database_busy_while_the_connections_are_held(
    link: FaultyLink, owner_url: str, tenants: Tenants
) -> None:
    one_connection = settings_through(link, owner_url, pool_size=1, max_overflow=0)
    async with started(one_connection, tenants) as api:
        database: Database = api._transport.app.state.database  # type: ignore[attr-defined]
        async with database.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            assert_unavailable(await api.get("/books"), "database_busy")
        assert (await api.get("/books")).status_code == 200


async def test_requests_beyond_the_queue_are_shed_at_once_while_admitted_ones_finish(
    link: FaultyLink, owner_url: str, tenants: Tenants
) -> None:
    settings = settings_through(
        link, owner_url, pool_size=1, max_overflow=0, pool_timeout_seconds=2
    )
    settings.resilience.max_in_flight = 1
    settings.resilience.max_queued = 0
    async with started(settings, tenants) as api:
        database: Database = api._transport.app.state.database  # type: ignore[attr-defined]
        held = await database.engine.connect()  # the admitted request waits for the pool
        admitted = asyncio.create_task(api.get("/books"))
        await asyncio.sleep(0.1)

        shed = await api.get("/books")
        assert_unavailable(shed, "overloaded")
        assert (await api.get("/health")).status_code == 200  # never shed
        await held.close()
        assert (await admitted).status_code == 200


async def test_a_statement_over_the_timeout_is_cancelled_and_the_connection_reused(
    owner_url: str,
) -> None:
    tuning = DatabaseSettings(url=SecretStr(owner_url), statement_timeout_seconds=0.2)
    database = Database.connect(owner_url, tuning)
    try:
        with pytest.raises(DatabaseTimeoutError):
            async with database.session() as session:
                backend = await session.scalar(text("SELECT pg_backend_pid()"))
                await session.execute(text("SELECT pg_sleep(2)"))
        async with database.session() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) == backend
    finally:
        await database.dispose()


async def test_the_transaction_a_deadlock_rolls_back_is_a_conflict_and_opens_no_circuit(
    owner_url: str,
) -> None:
    database = Database.connect(owner_url, DatabaseSettings(url=SecretStr(owner_url)))
    both_hold_one = asyncio.Barrier(2)

    async def lock_in_order(first: int, second: int) -> None:
        async with database.session() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": first})
            await both_hold_one.wait()
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": second})

    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(lock_in_order(1, 2), lock_in_order(2, 1), return_exceptions=True),
            NO_HANG_SECONDS,
        )
        conflicts = [error for error in outcomes if isinstance(error, DatabaseConflictError)]
        assert len(conflicts) == 1, outcomes  # PostgreSQL rolled back one; the other went on
        assert outcomes.count(None) == 1
        assert conflicts[0].retry_after_seconds == 1
        assert database.breaker.state is CircuitState.CLOSED
    finally:
        await database.dispose()


async def test_the_app_names_its_connections(api: httpx.AsyncClient, owner_url: str) -> None:
    assert (await api.get("/books")).status_code == 200
    owner = create_engine(owner_url)
    try:
        async with owner.connect() as connection:
            names = await connection.scalars(
                text(
                    "SELECT DISTINCT application_name FROM pg_stat_activity WHERE usename = :role"
                ),
                {"role": APP_ROLE},
            )
            assert names.all() == ["shelfwise"]
    finally:
        await owner.dispose()


async def test_a_server_that_refuses_the_login_is_an_outage(owner_url: str) -> None:
    owner = create_engine(owner_url)
    try:
        async with owner.connect() as connection:
            await connection.execute(text(
                "DO $$ BEGIN CREATE ROLE refused_app LOGIN PASSWORD 'refused' CONNECTION LIMIT 0;"
                " EXCEPTION WHEN duplicate_object THEN NULL; END $$"))  # fmt: skip
            await connection.commit()
    finally:
        await owner.dispose()
    url = make_url(owner_url).set(username="refused_app", password="refused")
    refused = url.render_as_string(hide_password=False)
    database = Database.connect(refused, DatabaseSettings(url=SecretStr(refused)))
    try:
        with pytest.raises(DatabaseUnavailableError):  # 53300: too many connections for role
            async with database.session() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await database.dispose()


async def test_an_impatient_readiness_probe_is_answered_but_opens_no_circuit(
    link: FaultyLink, owner_url: str
) -> None:
    through = link.url_for(owner_url)
    breaker = CircuitBreaker("the test database", failures=1, is_failure=is_outage)
    database = Database.connect(through, DatabaseSettings(url=SecretStr(through)), breaker)
    try:
        link.hang()  # slow to answer, as under load: the probe gives up first
        for _ in range(3):
            with pytest.raises(DatabaseUnavailableError):
                await database.check(timeout_seconds=0.2)
        assert breaker.state is CircuitState.CLOSED

        await link.heal()
        await database.check(timeout_seconds=NO_HANG_SECONDS)
    finally:
        await database.dispose()
