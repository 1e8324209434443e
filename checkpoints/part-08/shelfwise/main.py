"""The composition root: the one place that wires settings and features into a FastAPI app."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from shelfwise.catalog.router import create_router as create_catalog_router
from shelfwise.inventory.router import create_router as create_inventory_router
from shelfwise.orders.router import create_router as create_orders_router
from shelfwise.platform.db import Database
from shelfwise.platform.head import HeadAsGetMiddleware
from shelfwise.platform.problems import (
    install_problem_handlers,
    problem_responses,
    require_declared_media_type,
)
from shelfwise.platform.request_id import RequestIdMiddleware, new_request_id
from shelfwise.platform.settings import Settings


async def health() -> dict[str, str]:
    """Report that the process is up. Touches no database, so it stays cheap and reliable."""
    return {"status": "ok"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the process's resources when the app starts and release them when it stops.

    They live on ``app.state``, never in module globals, so every app has its own.
    """
    settings: Settings = app.state.settings
    database = Database.connect(settings.database_url)
    try:
        # Until migrations arrive, the schema comes straight from the models.
        await database.create_schema()
        app.state.database = database
        yield
    finally:
        await database.dispose()


def create_app(
    settings: Settings | None = None, *, generate_request_id: Callable[[], str] = new_request_id
) -> FastAPI:
    """Build a new, independent ShelfWise application.

    A factory (rather than a module-level ``app``) lets each test and each process build its own
    app with its own settings, with no state shared between them. ``generate_request_id`` makes
    the ids of requests that arrive without one; tests pass a deterministic one.
    """
    settings = settings or Settings()
    app = FastAPI(
        title=settings.app_name,
        lifespan=lifespan,
        # Every body is checked against the type its route reads, before it is parsed.
        dependencies=[Depends(require_declared_media_type)],
        # "/books/" is not "/books": a 404 problem, not a redirect built from the Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.add_api_route(
        "/health",
        health,
        methods=["GET"],
        tags=["platform"],
        responses=problem_responses(takes_input=False),
    )
    app.include_router(create_catalog_router())
    app.include_router(create_inventory_router())
    app.include_router(create_orders_router())
    install_problem_handlers(app)
    app.add_middleware(HeadAsGetMiddleware)
    # Added last, so it is the outermost middleware: every response, a 500 included, has the id.
    app.add_middleware(RequestIdMiddleware, generate=generate_request_id)
    return app
