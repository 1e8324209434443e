"""HTTP endpoints of the inventory."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.inventory.dependencies import InventoryServiceDep, StockReportDep
from shelfwise.inventory.errors import (
    CountBelowReservedError,
    InsufficientStockError,
    InvalidQuantityError,
    StockContendedError,
)
from shelfwise.inventory.ports import StockLevel
from shelfwise.inventory.schemas import StockAdjustment, StockRead, StockUpdate
from shelfwise.platform.conditional import IfMatchHeader, entity_tag, if_match_of
from shelfwise.platform.errors import PreconditionFailedError
from shelfwise.platform.pagination import MAX_PAGE_SIZE
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.schemas import Id

# As many books per report as fit on one page of the catalog.
BookIds = Annotated[list[Id], Query(alias="book_id", min_length=1, max_length=MAX_PAGE_SIZE)]


def _read(book_id: int, level: StockLevel, response: Response) -> StockRead:
    # The version is the entity tag: a client sends it back in If-Match to change this count.
    response.headers["ETag"] = entity_tag(level.version)
    return StockRead(book_id=book_id, quantity=level.quantity)


async def set_stock(
    book_id: Id,
    body: StockUpdate,
    inventory: InventoryServiceDep,
    response: Response,
    request: Request,
    if_match: IfMatchHeader = None,  # read from the request, every line of it; here for the docs
) -> StockRead:
    """Record how many copies of a book are on hand. With `If-Match`, only if the count is
    still the one read with that `ETag` (412 if not)."""
    level = await inventory.set_stock(book_id, body.quantity, versions=if_match_of(request))
    return _read(book_id, level, response)


async def get_stock(book_id: Id, inventory: InventoryServiceDep, response: Response) -> StockRead:
    """Return how many copies of a book are on hand, with the count's `ETag`."""
    return _read(book_id, await inventory.get_stock(book_id), response)


async def adjust_stock(
    book_id: Id, body: StockAdjustment, inventory: InventoryServiceDep, response: Response
) -> StockRead:
    """Add copies to the stock (a delivery) or take them off (a write-off: a negative change).
    Concurrent adjustments all count: none overwrites another."""
    return _read(book_id, await inventory.adjust_stock(book_id, body.change), response)


async def get_stock_levels(book_ids: BookIds, report: StockReportDep) -> list[StockRead]:
    """Return the copies on hand of several books: ``/stock?book_id=1&book_id=2``."""
    levels = await report.levels(book_ids)
    return [StockRead(book_id=book_id, quantity=quantity) for book_id, quantity in levels.items()]


def create_router() -> APIRouter:
    """The inventory's routes, on a new router for each app."""
    router = APIRouter(tags=["inventory"])
    router.add_api_route(
        "/books/{book_id}/stock",
        set_stock,
        methods=["PUT"],
        responses=problem_responses(
            BookNotFoundError,
            InvalidQuantityError,
            PreconditionFailedError,
            CountBelowReservedError,
        ),
    )
    router.add_api_route(
        "/books/{book_id}/stock/adjustments",
        adjust_stock,
        methods=["POST"],
        responses=problem_responses(
            BookNotFoundError, InvalidQuantityError, InsufficientStockError, StockContendedError
        ),
    )
    router.add_api_route(
        "/books/{book_id}/stock",
        get_stock,
        methods=["GET"],
        responses=problem_responses(BookNotFoundError),
    )
    router.add_api_route("/stock", get_stock_levels, methods=["GET"], responses=problem_responses())
    return router
