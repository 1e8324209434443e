"""HTTP endpoints of the inventory."""

from typing import Annotated

from fastapi import APIRouter, Query

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.inventory.dependencies import InventoryServiceDep, StockReportDep
from shelfwise.inventory.errors import InvalidQuantityError
from shelfwise.inventory.schemas import StockRead, StockUpdate
from shelfwise.platform.pagination import MAX_PAGE_SIZE
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.schemas import Id

# As many books per report as fit on one page of the catalog.
BookIds = Annotated[list[Id], Query(alias="book_id", min_length=1, max_length=MAX_PAGE_SIZE)]


async def set_stock(book_id: Id, body: StockUpdate, inventory: InventoryServiceDep) -> StockRead:
    """Record how many copies of a book are on hand."""
    await inventory.set_stock(book_id, body.quantity)
    return StockRead(book_id=book_id, quantity=body.quantity)


async def get_stock(book_id: Id, inventory: InventoryServiceDep) -> StockRead:
    """Return how many copies of a book are on hand."""
    return StockRead(book_id=book_id, quantity=await inventory.get_stock(book_id))


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
        responses=problem_responses(BookNotFoundError, InvalidQuantityError),
    )
    router.add_api_route(
        "/books/{book_id}/stock",
        get_stock,
        methods=["GET"],
        responses=problem_responses(BookNotFoundError),
    )
    router.add_api_route("/stock", get_stock_levels, methods=["GET"], responses=problem_responses())
    return router
