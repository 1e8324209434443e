"""Which database errors are outages, and what each is answered with: the SQLSTATEs and
exception classes asyncpg and SQLAlchemy really raise (part 11 measured them on a real server),
wrapped or not."""

import logging
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shelfwise.platform.db import (
    Database,
    DatabaseBusyError,
    DatabaseConflictError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    as_unavailable,
    create_engine,
    is_outage,
)


class AdaptedError(Exception):
    """What SQLAlchemy's asyncpg adapter puts in ``DBAPIError.orig``: it carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(sqlstate: str, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", None, AdaptedError(sqlstate), connection_invalidated=invalidated)


OUTAGES: list[Any] = [
    ConnectionRefusedError(111, "Connect call failed"),  # the server is down (TCP)
    FileNotFoundError(2, "No such file or directory"),  # the server is down (unix socket)
    TimeoutError(),  # connecting to, or waiting on, a server that answers nothing
    asyncpg.TooManyConnectionsError("too many connections for role"),  # 53300, at login
    asyncpg.CannotConnectNowError("the database system is shutting down"),  # 57P03
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    wrapped("08006"),  # connection failure, mid-statement
    InterfaceError("SELECT 1", None, AdaptedError("08003"), connection_invalidated=True),
]
NOT_OUTAGES: list[Any] = [
    PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached"),  # busy, not down
    wrapped("57014"),  # statement_timeout: slow, not down
    wrapped("40P01"),  # deadlock_detected: a conflict between two transactions
    wrapped("23505"),  # a unique violation: a broken rule
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda error: type(error).__name__)
def test_outages_count_against_the_breaker_and_are_answered_unavailable(error: Any) -> None:
    assert is_outage(error)
    answer = as_unavailable(error, retry_after_seconds=4)
    assert isinstance(answer, DatabaseUnavailableError)
    assert answer.retry_after_seconds == 4


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda error: type(error).__name__)
def test_busy_slow_and_broken_are_not_outages(error: Any) -> None:
    assert not is_outage(error)


def test_a_full_pool_is_busy_and_a_cancelled_statement_is_a_timeout() -> None:
    assert isinstance(as_unavailable(NOT_OUTAGES[0], 1), DatabaseBusyError)
    assert isinstance(as_unavailable(wrapped("57014"), 1), DatabaseTimeoutError)
    assert as_unavailable(wrapped("23505"), 1) is None
    assert as_unavailable(ValueError("a bug"), 1) is None


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_transaction_rolled_back_for_another_is_a_conflict_to_retry(sqlstate: str) -> None:
    answer = as_unavailable(wrapped(sqlstate), retry_after_seconds=30)
    assert isinstance(answer, DatabaseConflictError)
    assert answer.retry_after_seconds == 1


class CloseFails(AsyncSession):
    async def close(self) -> None:
        await super().close()
        raise ConnectionResetError("the server went away while the connection was returned")


async def test_a_session_that_fails_to_close_does_not_fail_the_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'close.db'}"))
    database.session_factory = async_sessionmaker(database.engine, class_=CloseFails)
    try:
        with caplog.at_level(logging.WARNING, "shelfwise.platform.db"):
            async with database.session() as session:
                assert await session.scalar(select(1)) == 1

        assert "database error while closing a session: ConnectionResetError" in caplog.text
    finally:
        await database.dispose()
