"""The composition root: the one place that wires settings and features into a FastAPI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from shelfwise.catalog.router import create_router as create_catalog_router
from shelfwise.inventory.router import create_router as create_inventory_router
from shelfwise.orders.router import create_router as create_orders_router
from shelfwise.platform.db import Database
from shelfwise.platform.errors import ConflictError, DomainError, InvalidInputError, NotFoundError
from shelfwise.platform.settings import Settings

# Each kind of domain error means the same thing to every HTTP client.
STATUS_BY_ERROR_KIND: tuple[tuple[type[DomainError], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (InvalidInputError, status.HTTP_422_UNPROCESSABLE_CONTENT),
)


async def health() -> dict[str, str]:
    """Report that the process is up. Touches no database, so it stays cheap and reliable."""
    return {"status": "ok"}


async def domain_error_response(request: Request, error: Exception) -> JSONResponse:
    """Turn a ``DomainError`` into ``{"code": ..., "detail": ...}`` with a matching status."""
    if not isinstance(error, DomainError):  # registered for DomainError only
        raise error
    status_code = next(
        (code for kind, code in STATUS_BY_ERROR_KIND if isinstance(error, kind)),
        status.HTTP_400_BAD_REQUEST,
    )
    return JSONResponse({"code": error.code, "detail": error.detail}, status_code=status_code)


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a new, independent ShelfWise application.

    A factory (rather than a module-level ``app``) lets each test and each process build its own
    app with its own settings, with no state shared between them.
    """
    settings = settings or Settings()
    app = FastAPI(title=settings.app_name, lifespan=lifespan)
    app.state.settings = settings
    app.add_api_route("/health", health, methods=["GET"], tags=["platform"])
    app.include_router(create_catalog_router())
    app.include_router(create_inventory_router())
    app.include_router(create_orders_router())
    app.add_exception_handler(DomainError, domain_error_response)
    return app
