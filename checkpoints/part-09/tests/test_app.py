"""The app factory, the health check and settings."""

import httpx
import pytest

from shelfwise.main import create_app
from shelfwise.platform.settings import Settings


async def test_health_reports_ok() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_app_title_comes_from_settings() -> None:
    app = create_app(Settings(app_name="ShelfWise (staging)"))

    assert app.title == "ShelfWise (staging)"


def test_each_call_builds_a_separate_app() -> None:
    assert create_app() is not create_app()


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHELFWISE_APP_NAME", raising=False)
    monkeypatch.delenv("SHELFWISE_DATABASE_URL", raising=False)

    settings = Settings()

    assert settings.app_name == "ShelfWise"
    assert settings.database_url == "sqlite+aiosqlite:///./shelfwise.db"


def test_settings_read_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", "sqlite+aiosqlite:///./elsewhere.db")

    assert Settings().database_url == "sqlite+aiosqlite:///./elsewhere.db"


def test_settings_ignore_unprefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHELFWISE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://someone-else/db")

    assert Settings().database_url == "sqlite+aiosqlite:///./shelfwise.db"
