"""The composition root: the one place that wires settings and features into a FastAPI app."""

from fastapi import FastAPI

from shelfwise.platform.settings import Settings


async def health() -> dict[str, str]:
    """Report that the process is up. Touches no database, so it stays cheap and reliable."""
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a new, independent ShelfWise application.

    A factory (rather than a module-level ``app``) lets each test and each process build its own
    app with its own settings, with no state shared between them.
    """
    settings = settings or Settings()
    app = FastAPI(title=settings.app_name)
    app.state.settings = settings
    app.add_api_route("/health", health, methods=["GET"], tags=["platform"])
    return app
