"""Persistence plumbing shared by every feature: the model base, engine, sessions, paging."""

from collections.abc import Sequence
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, MetaData, Select, event, func, make_url, select
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session

from shelfwise.platform.pagination import Page, ensure_valid_window

T = TypeVar("T")

# Deterministic constraint names, so migrations (and error messages) can refer to a constraint
# by a name we chose rather than one the database invented.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every ORM model; its metadata describes the whole schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# How long a SQLite writer waits for the write lock before "database is locked".
SQLITE_LOCK_WAIT_SECONDS = 30


def create_engine(database_url: str) -> AsyncEngine:
    """Create the async engine for ``database_url``.

    Three SQLite driver defaults are wrong for us and are fixed here: foreign keys are ignored
    unless asked for on every connection; a writer gives up after 5 s waiting for another
    writer, which a burst of CSV imports outlasts; and a savepoint opened before any write
    would commit on release (see ``_begin_before_sqlite_savepoint``).
    """
    sqlite = make_url(database_url).get_backend_name() == "sqlite"
    # SQLite has one writer at a time; the others queue for the lock this long.
    connect_args = {"timeout": SQLITE_LOCK_WAIT_SECONDS} if sqlite else {}
    engine = create_async_engine(database_url, connect_args=connect_args)
    if sqlite:
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        event.listen(engine.sync_engine, "savepoint", _begin_before_sqlite_savepoint)
    return engine


def _begin_before_sqlite_savepoint(connection: Connection, _name: str) -> None:
    # The sqlite3 driver emits BEGIN only before INSERT/UPDATE/DELETE, never before SAVEPOINT:
    # a savepoint opened first starts a transaction of its own, and RELEASE commits it.
    # SQLAlchemy's documented cure switches the driver's BEGIN off and begins every
    # transaction, reads included, which turns concurrent orders into "database is locked".
    # So we begin only where the driver fails to: IMMEDIATE takes the write lock the write
    # inside the savepoint would take anyway, and waits for it like the driver's BEGIN does.
    driver_connection = connection.connection.driver_connection
    if driver_connection is not None and not driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit.

    ``expire_on_commit=False`` matters in async code: an expired attribute would need a hidden
    query to reload, and hidden queries cannot run outside ``await``. Each factory gets a
    ``Session`` class of its own, so event hooks (part 9's tenant walls) can be put on the
    sessions of one factory without touching any other.
    """
    own_session_class = type("FactorySession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=own_session_class)


def session_class(session_factory: async_sessionmaker[AsyncSession]) -> type[Session]:
    """The ``Session`` class behind the sessions ``session_factory`` opens: an event target."""
    sessions: type[Session] = session_factory.kw["sync_session_class"]
    return sessions


async def grant_to_app_role(
    connection: AsyncConnection, role: str, *, writable: Sequence[str], read_only: Sequence[str]
) -> None:
    """Let ``role`` read and write ``writable`` and read ``read_only``, on PostgreSQL; nothing
    more: it owns no table, so no bug and no injected statement can drop a table or switch off
    a row-level security policy.

    It may not create temporary tables either. One would outlive the request on its pooled
    connection, and could shadow a real table for the next request that borrows it.
    """
    quoted = connection.dialect.identifier_preparer.quote(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
        "DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', "
        "current_database()); END $$",
    ]
    if writable:
        tables = ", ".join(writable)
        statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {quoted}")
    if read_only:
        tables = ", ".join(read_only)
        statements.append(f"REVOKE INSERT, UPDATE, DELETE ON {tables} FROM {quoted}")
        statements.append(f"GRANT SELECT ON {tables} TO {quoted}")
    for statement in statements:
        await connection.exec_driver_sql(statement)


async def create_schema(engine: AsyncEngine) -> None:
    """Create every table known to ``Base.metadata`` that does not exist yet."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)


class Database:
    """The process's database resources: one engine (and so one connection pool) and the
    factory that opens sessions on it.

    The app's lifespan creates exactly one and stores it on ``app.state``; nothing is created at
    import time, so tests and notebooks can build as many independent apps as they like.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.session_factory = create_session_factory(engine)

    @classmethod
    def connect(cls, database_url: str) -> Self:
        """Create the engine for ``database_url``. No connection is opened until one is needed."""
        return cls(create_engine(database_url))

    async def dispose(self) -> None:
        """Close every pooled connection. The app's lifespan calls this on shutdown."""
        await self.engine.dispose()


async def fetch_page(session: AsyncSession, matches: Select[T], limit: int, offset: int) -> Page[T]:
    """Run ``matches`` (filters, ordering and loader options included) for one page of results.

    The total is counted over the same statement, so it applies the same filters. It is a second
    statement, though: under READ COMMITTED a commit in between can make the two disagree.
    """
    ensure_valid_window(limit, offset)
    matching = matches.order_by(None).subquery()
    total = await session.scalar(select(func.count()).select_from(matching))
    items = await session.scalars(matches.limit(limit).offset(offset))
    return Page(items=items.all(), total=total or 0, limit=limit, offset=offset)
