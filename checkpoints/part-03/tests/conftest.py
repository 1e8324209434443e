"""Fixtures shared by all tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

# Importing the models registers their tables on Base.metadata.
from shelfwise.catalog import models as catalog_models  # noqa: F401
from shelfwise.platform.db import Base


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite database file per test, with the full schema created."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'shelfwise.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One session on the test database; objects stay readable after commit (no implicit I/O)."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session
