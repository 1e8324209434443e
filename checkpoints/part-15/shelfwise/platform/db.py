"""Persistence plumbing shared by every feature: the model base, engine, sessions, paging."""

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, Literal, NewType, Self, TypeVar, overload

from sqlalchemy import Connection, MetaData, Select, event, func, make_url, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session

from shelfwise.platform.errors import UnavailableError
from shelfwise.platform.pagination import Page, ensure_valid_window
from shelfwise.platform.resilience import CircuitBreaker
from shelfwise.platform.settings import DatabaseSettings

T = TypeVar("T")

logger = logging.getLogger(__name__)

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


def create_engine(database_url: str, tuning: DatabaseSettings | None = None) -> AsyncEngine:
    """Create the async engine for ``database_url``.

    Three SQLite driver defaults are wrong for us and are fixed here: foreign keys are ignored
    unless asked for on every connection; a writer gives up after 5 s waiting for another
    writer, which a burst of CSV imports outlasts; and a savepoint opened before any write
    would commit on release (see ``_begin_before_sqlite_savepoint``).

    ``tuning`` sizes the pool and bounds every wait (see ``DatabaseSettings``). Without it the
    engine keeps SQLAlchemy's and the driver's defaults, as tools and tests that open a few
    connections may: a pool of 5 + 10, 30 s for a free connection, no timeout on connecting
    or on a statement, and no check that a pooled connection still works.
    """
    sqlite = make_url(database_url).get_backend_name() == "sqlite"
    # SQLite has one writer at a time; the others queue for the lock this long.
    connect_args: dict[str, Any] = {"timeout": SQLITE_LOCK_WAIT_SECONDS} if sqlite else {}
    options: dict[str, Any] = {}
    if tuning is not None:
        # A pooled connection may have died with a restarted server: test it when it is
        # taken from the pool (one round trip) and replace it if it no longer answers.
        options["pool_pre_ping"] = True
        if not sqlite:
            options |= {
                "pool_size": tuning.pool_size,
                "max_overflow": tuning.max_overflow,
                "pool_timeout": tuning.pool_timeout_seconds,
                "pool_recycle": tuning.pool_recycle_seconds,
            }
            connect_args |= postgres_connect_args(tuning)
    engine = create_async_engine(database_url, connect_args=connect_args, **options)
    if sqlite:
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        event.listen(engine.sync_engine, "savepoint", _begin_before_sqlite_savepoint)
    return engine


# How much longer than the server's statement timeout the client waits for any answer.
CLIENT_GRACE_SECONDS = 1.0


def postgres_connect_args(tuning: DatabaseSettings) -> dict[str, Any]:
    """asyncpg's arguments for ``tuning``'s timeouts and name."""
    return {
        "timeout": tuning.connect_timeout_seconds,
        # The server cancels a slow statement cleanly; this catches a server that is silent.
        "command_timeout": tuning.statement_timeout_seconds + CLIENT_GRACE_SECONDS,
        "server_settings": {
            "application_name": tuning.application_name,
            "statement_timeout": str(round(tuning.statement_timeout_seconds * 1000)),
        },
    }


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


class DatabaseUnavailableError(UnavailableError):
    """The database cannot be reached: it is down, restarting, or not answering. Nothing the
    request asked for was done, unless the connection broke while its changes were being
    committed. Retry after the number of seconds in the `Retry-After` header."""

    code = "database_unavailable"
    title = "Database unavailable"


class DatabaseBusyError(UnavailableError):
    """Every database connection the service may open is in use, and none came free in time.
    Nothing was done. Retry after the number of seconds in the `Retry-After` header."""

    code = "database_busy"
    title = "Database busy"


class DatabaseTimeoutError(UnavailableError):
    """A database statement ran longer than the service allows, and was cancelled. Nothing was
    done. Retry after the number of seconds in the `Retry-After` header."""

    code = "database_timeout"
    title = "Database too slow"


class DatabaseConflictError(UnavailableError):
    """The database ended the transaction to break a deadlock with another one, or because it
    could not be serialized with another one. Nothing was done. Retry after the number of
    seconds in the `Retry-After` header."""

    code = "database_conflict"
    title = "Transaction in conflict"


# SQLSTATE 57014, query_canceled: what PostgreSQL reports when statement_timeout fires.
QUERY_CANCELED = "57014"
# SQLSTATEs of a transaction the server rolled back for another's sake: serialization_failure
# and deadlock_detected. Running it again is the documented remedy.
CONFLICT_SQLSTATES = ("40001", "40P01")
# SQLSTATEs of a server that cannot serve us: connection exceptions (class 08), too many
# connections, and a server that is shutting down, crashed, or still starting up.
OUTAGE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached, as opposed to being busy, slow,
    or refusing one statement. Only outages count against the circuit breaker.

    asyncpg's errors while connecting reach us unwrapped by SQLAlchemy: a refused or vanished
    socket as ``OSError``, a silent server as ``TimeoutError``, a server that refuses the
    login (too many connections, shutting down) as asyncpg's own error with its SQLSTATE.
    """
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:  # the connection broke (the server went away)
            return True
        error = error.orig or error
    sqlstate = sqlstate_of(error)
    if sqlstate is not None and sqlstate.startswith(OUTAGE_SQLSTATES):
        return True
    return isinstance(error, OSError)  # TimeoutError included


def as_unavailable(error: BaseException, retry_after_seconds: int) -> UnavailableError | None:
    """The problem to answer for a database error, or ``None`` for a bug or a broken rule."""
    if isinstance(error, PoolTimeoutError):
        return DatabaseBusyError(
            "Every database connection is in use. Retry in 1 s.", retry_after_seconds=1
        )
    if sqlstate_of(error) == QUERY_CANCELED:
        return DatabaseTimeoutError(
            "A database statement took too long and was cancelled. Retry in 1 s.",
            retry_after_seconds=1,
        )
    if sqlstate_of(error) in CONFLICT_SQLSTATES:
        return DatabaseConflictError(
            "The database rolled this transaction back to settle a conflict with another one. "
            "Retry in 1 s.",
            retry_after_seconds=1,
        )
    if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
        return DatabaseBusyError(  # SQLite's writer lock, after SQLITE_LOCK_WAIT_SECONDS
            "The database is busy with other writes. Retry in 1 s.", retry_after_seconds=1
        )
    if is_outage(error):
        return DatabaseUnavailableError(
            f"The database cannot be reached. Retry in {retry_after_seconds} s.",
            retry_after_seconds=retry_after_seconds,
        )
    return None


def _first_line(error: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's wrapping (the SQL, a link), bounded."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return (str(cause).splitlines() or [type(cause).__name__])[0][:200]


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL reported, whether or not SQLAlchemy wrapped the error."""
    if isinstance(error, DBAPIError):
        error = error.orig or error
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None


# The two kinds of session, told apart by the type checker: code that writes asks for a
# WriteSession, and a ReadSession (maybe on a replica, always read-only) cannot be passed to it.
ReadSession = NewType("ReadSession", AsyncSession)
WriteSession = NewType("WriteSession", AsyncSession)
SessionT = TypeVar("SessionT", ReadSession, WriteSession)


class Database:
    """The process's database resources: the engines (and so the connection pools), the
    factories that open sessions on them, and a circuit breaker in front of each server.

    Writes go to the primary (``engine``). Reads go to the ``replica`` when there is one and
    its breaker lets them, else to the primary; either way in read-only transactions, so a
    read path that tries to write fails on the primary exactly as it would on a replica.

    The app's lifespan creates exactly one and stores it on ``app.state``; nothing is created at
    import time, so tests and notebooks can build as many independent apps as they like.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        breaker: CircuitBreaker | None = None,
        *,
        replica: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.replica = replica
        self.breaker = breaker or CircuitBreaker("the database", is_failure=is_outage)
        # One failure sends reads to the primary until a trial read succeeds: the primary can
        # serve them, so there is no reason to let a second request fail on the replica.
        self.replica_breaker = CircuitBreaker(
            "the read replica",
            failures=1,
            reset_seconds=self.breaker.reset_seconds,
            is_failure=is_outage,
        )
        self.session_factory = create_session_factory(engine)
        self.read_session_factory = create_session_factory(read_only_engine(replica or engine))
        self.primary_read_session_factory = (
            create_session_factory(read_only_engine(engine))
            if replica
            else self.read_session_factory
        )

    @property
    def session_factories(self) -> list[async_sessionmaker[AsyncSession]]:
        """Every factory this object opens sessions with: each needs the tenant walls."""
        factories = [self.session_factory, self.read_session_factory]
        if self.primary_read_session_factory is not self.read_session_factory:
            factories.append(self.primary_read_session_factory)
        return factories

    @classmethod
    def connect(
        cls,
        database_url: str,
        tuning: DatabaseSettings | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> Self:
        """Create the engines for ``database_url`` (and ``tuning.read_url``, the replica).
        No connection is opened until one is needed."""
        replica = None
        if tuning is not None and tuning.read_url is not None:
            read_tuning = tuning.model_copy(
                update={"application_name": f"{tuning.application_name}-read"}
            )
            replica = create_engine(tuning.read_url.get_secret_value(), read_tuning)
        return cls(create_engine(database_url, tuning), breaker, replica=replica)

    @overload
    def session(self, *, read_only: Literal[True]) -> AbstractAsyncContextManager[ReadSession]: ...

    @overload
    def session(
        self, *, read_only: Literal[False] = False
    ) -> AbstractAsyncContextManager[WriteSession]: ...

    @overload
    def session(self, *, read_only: bool) -> AbstractAsyncContextManager[AsyncSession]: ...

    def session(
        self, *, read_only: bool = False
    ) -> AbstractAsyncContextManager[ReadSession] | AbstractAsyncContextManager[WriteSession]:
        """A session whose work is one call through a breaker: rolled back if the block fails,
        always closed; an outage, a full pool or a cancelled statement is raised as an
        ``UnavailableError``, which the API answers with 503 and ``Retry-After``."""
        if not read_only:
            return self._session(self.session_factory, self.breaker, WriteSession)
        if self.replica is not None and self.replica_breaker.admits():
            return self._session(self.read_session_factory, self.replica_breaker, ReadSession)
        return self._session(self.primary_read_session_factory, self.breaker, ReadSession)

    @asynccontextmanager
    async def _session(
        self,
        factory: async_sessionmaker[AsyncSession],
        breaker: CircuitBreaker,
        kind: Callable[[AsyncSession], SessionT],
    ) -> AsyncIterator[SessionT]:
        with self._guarded(breaker):
            session = factory()
            try:
                yield kind(session)
            except BaseException:
                await _quietly(session.rollback(), "rolling back a failed request's session")
                raise
            finally:
                # Closing returns the connection. The request's answer is decided (and may be
                # sent) by now: a connection that breaks here is the pool's to replace, not
                # the client's problem.
                await _quietly(session.close(), "closing a session")

    async def check(self, timeout_seconds: float) -> None:
        """One round trip to the primary, through its breaker, within ``timeout_seconds``;
        raises like ``session``. Running out of time is answered, not counted against the
        breaker: under load the wait may be for the pool, and the probe's impatience must
        not open the circuit for every request."""
        try:
            async with asyncio.timeout(timeout_seconds):
                with self._guarded(self.breaker):
                    async with self.engine.connect() as connection:
                        await connection.execute(select(1))
        except TimeoutError:
            raise DatabaseUnavailableError(
                f"The database did not answer within {timeout_seconds:g} s. Retry in 1 s.",
                retry_after_seconds=1,
            ) from None

    @contextmanager
    def _guarded(self, breaker: CircuitBreaker) -> Iterator[None]:
        try:
            with breaker.guard():
                yield
        except Exception as error:  # asyncpg's connect errors are not SQLAlchemy's: see is_outage
            # A read that failed on the replica can be retried at once: it will go to the primary.
            retry_after = 1 if breaker is self.replica_breaker else math.ceil(breaker.retry_after())
            unavailable = as_unavailable(error, max(1, retry_after))
            if unavailable is None:
                raise
            # The client sees the problem's code; the log keeps what the database said.
            logger.warning(
                "database error answered with a problem",
                extra={
                    "problem": unavailable.code,
                    "sqlstate": sqlstate_of(error),
                    "database_said": _first_line(error),
                },
            )
            raise unavailable from error

    async def dispose(self) -> None:
        """Close every pooled connection. The app's lifespan calls this on shutdown."""
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.dispose()


async def _quietly(cleanup: Awaitable[None], what: str) -> None:
    """Await ``cleanup``; if the database fails it, log that rather than hide the request's own
    outcome behind it."""
    try:
        await cleanup
    except Exception as error:
        logger.warning("database error while %s: %s", what, type(error).__name__)


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine``, its transactions begun READ ONLY on PostgreSQL (the same pool)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(postgresql_readonly=True)


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
