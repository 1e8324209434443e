"""Fixtures shared by all tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# Importing the models registers their tables on Base.metadata.
from shelfwise.catalog import models as catalog_models  # noqa: F401
from shelfwise.inventory import models as inventory_models  # noqa: F401
from shelfwise.main import create_app
from shelfwise.orders import models as order_models  # noqa: F401
from shelfwise.platform.db import create_engine, create_schema, create_session_factory
from shelfwise.platform.settings import Settings


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


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """A started app (engine created, schema in place) on a database file of its own."""
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that calls ``app`` in-process, through httpx's ASGI transport: no server."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
