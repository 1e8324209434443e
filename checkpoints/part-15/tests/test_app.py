"""The app factory and the health check (settings: platform/test_settings.py)."""

import httpx

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
