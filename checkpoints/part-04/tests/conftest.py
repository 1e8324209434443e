"""Fixtures shared by all tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# Importing the models registers their tables on Base.metadata.
from shelfwise.catalog import models as catalog_models  # noqa: F401
from shelfwise.inventory import models as inventory_models  # noqa: F401
from shelfwise.platform.db import create_engine, create_schema, create_session_factory


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite database file per test, set up exactly as the app sets it up."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'shelfwise.db'}")
    await create_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One session on the test database, configured like the app's sessions."""
    async with create_session_factory(engine)() as session:
        yield session
