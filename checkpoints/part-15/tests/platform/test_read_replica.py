"""Reads on a replica, writes on the primary: a real hot standby serves safe requests behind the
same tenant walls, reads fall back to the primary while the replica is down, and a read session
cannot write even where the primary serves it."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from shelfwise.main import create_app
from shelfwise.platform.db import Database, create_engine
from shelfwise.platform.settings import (
    AuthSettings,
    CacheSettings,
    DatabaseSettings,
    ResilienceSettings,
    Settings,
)
from tests.conftest import TEST_SECRET, client_for
from tests.databases import as_app_role
from tests.factories import Tenants, book_payload
from tests.faults import faulty_link
from tests.replicas import hot_standby

# PostgreSQL only: the shared fixtures (database_url, tenants) on that one database.
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

# Long enough that the reads after the replica's failure all come while its circuit is
# open, even on a loaded machine (0.3 s was not, under two test workers).
RESET_SECONDS = 1.0


@pytest.fixture
def owner_url(database_url: str) -> str:
    """The owner's URL of the test's empty database (the app logs in as ``APP_ROLE``)."""
    return database_url


def settings_with_replica(owner_url: str, read_url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(
            url=SecretStr(as_app_role(owner_url)),
            admin_url=SecretStr(owner_url),
            read_url=SecretStr(read_url),
            connect_timeout_seconds=0.5,
        ),
        auth=AuthSettings(secret_key=TEST_SECRET),
        resilience=ResilienceSettings(breaker_reset_seconds=RESET_SECONDS),
        # Every read must reach a database here: a cached one would answer without it.
        cache=CacheSettings(enabled=False),
    )


@contextlib.asynccontextmanager
async def clients(
    settings: Settings, tenants: Tenants
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        client_for(app, tenants.a) as a,
        client_for(app, tenants.b) as b,
    ):
        yield a, b


async def test_safe_requests_read_from_a_real_hot_standby_behind_the_tenant_walls(
    owner_url: str, tenants: Tenants
) -> None:
    database_name = make_url(owner_url).database
    async with hot_standby(make_url(owner_url).set(database="postgres")) as standby:
        standby_owner = standby.set(database=database_name)
        read_url = as_app_role(standby_owner.render_as_string(hide_password=False))
        async with clients(settings_with_replica(owner_url, read_url), tenants) as (a, b):
            created = await create_book(a)
            await until_replayed(standby_owner.render_as_string(hide_password=False))

            assert [book["title"] for book in (await a.get("/books")).json()["items"]] == [
                created.json()["title"]
            ]
            assert (await b.get("/books")).json()["items"] == []
            assert (await a.get(f"/books/{created.json()['id']}")).status_code == 200
            assert await read_connections(standby_owner.render_as_string(hide_password=False))


async def create_book(client: httpx.AsyncClient) -> httpx.Response:
    author = await client.post("/authors", json={"name": "Ursula K. Le Guin"})
    created = await client.post("/books", json=book_payload(author.json()["id"]))
    assert created.status_code == 201, created.text
    return created


async def until_replayed(standby_url: str) -> None:
    """Wait (at most 10 s) until the standby has replayed everything the primary wrote."""
    engine = create_engine(standby_url)
    try:
        async with asyncio.timeout(10):
            while True:
                async with engine.connect() as connection:
                    count = await connection.scalar(text("SELECT count(*) FROM books"))
                if count:
                    return
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()


async def read_connections(standby_url: str) -> int:
    engine = create_engine(standby_url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": "shelfwise-read"},
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def test_reads_fall_back_to_the_primary_while_the_replica_is_down(
    owner_url: str, tenants: Tenants
) -> None:
    async with faulty_link(owner_url) as replica:  # a stand-in: the primary, over a link
        settings = settings_with_replica(owner_url, replica.url_for(as_app_role(owner_url)))
        async with clients(settings, tenants) as (a, _):
            assert (await a.get("/books")).status_code == 200
            assert replica.connections
            await replica.refuse()

            first = await a.get("/books")
            assert first.status_code == 503
            assert first.json()["code"] == "database_unavailable"
            assert (await a.get("/books")).status_code == 200  # from the primary
            created = await create_book(a)
            # The stock report opens sessions of its own: they fall back as well.
            levels = await a.get("/stock", params={"book_id": created.json()["id"]})
            assert levels.status_code == 200, levels.text

            await replica.heal()
            await asyncio.sleep(RESET_SECONDS)
            assert [b["id"] for b in (await a.get("/books")).json()["items"]] == [
                created.json()["id"]
            ]
            assert replica.connections  # reads are back on the replica


async def test_a_read_session_cannot_write_even_on_the_primary(owner_url: str) -> None:
    database = Database.connect(owner_url, DatabaseSettings(url=SecretStr(owner_url)))
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with database.session(read_only=True) as reading:
                await reading.execute(text("CREATE TABLE scratch (id int)"))
        async with database.session() as writing:
            await writing.execute(text("CREATE TABLE scratch (id int)"))
            await writing.commit()
    finally:
        await database.dispose()
