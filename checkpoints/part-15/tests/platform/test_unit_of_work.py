"""SqlUnitOfWork commits only what it is told to commit."""

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shelfwise.catalog.models import Author
from shelfwise.platform.db import SQLITE_LOCK_WAIT_SECONDS, create_engine, create_session_factory
from shelfwise.platform.unit_of_work import SqlUnitOfWork


async def count_authors_in_a_new_session(engine: AsyncEngine) -> int:
    async with create_session_factory(engine)() as fresh:
        return await fresh.scalar(select(func.count()).select_from(Author)) or 0


async def test_committed_work_is_visible_to_other_sessions(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    async with SqlUnitOfWork(session) as uow:
        session.add(Author(name="Octavia E. Butler"))
        await uow.commit()

    assert await count_authors_in_a_new_session(engine) == 1


async def test_leaving_without_commit_rolls_back(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    async with SqlUnitOfWork(session):
        session.add(Author(name="Octavia E. Butler"))
        await session.flush()  # the row reached the database, inside the transaction

    assert await session.scalar(select(func.count()).select_from(Author)) == 0
    assert await count_authors_in_a_new_session(engine) == 0


async def test_an_exception_rolls_back_and_propagates(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with SqlUnitOfWork(session):
            session.add(Author(name="Octavia E. Butler"))
            await session.flush()
            raise RuntimeError("boom")

    assert await count_authors_in_a_new_session(engine) == 0


async def test_a_savepoint_inside_the_unit_of_work_does_not_commit_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    # Repositories insert inside a savepoint (begin_nested). On SQLite's driver, a savepoint
    # opened before any write used to start a transaction of its own, committed on release.
    with pytest.raises(RuntimeError, match="boom"):
        async with SqlUnitOfWork(session):
            async with session.begin_nested():
                session.add(Author(name="Octavia E. Butler"))
            raise RuntimeError("boom")

    assert await count_authors_in_a_new_session(engine) == 0


async def test_a_sqlite_writer_waits_for_the_lock_instead_of_failing_at_once(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}")
    async with engine.connect() as connection:
        waits_ms = await connection.scalar(text("PRAGMA busy_timeout"))
    await engine.dispose()

    assert waits_ms == SQLITE_LOCK_WAIT_SECONDS * 1000
