"""HTTP endpoints of the inventory."""

from fastapi import APIRouter

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.inventory.dependencies import InventoryServiceDep
from shelfwise.inventory.errors import InvalidQuantityError
from shelfwise.inventory.schemas import StockRead, StockUpdate
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.schemas import Id


async def set_stock(book_id: Id, body: StockUpdate, inventory: InventoryServiceDep) -> StockRead:
    """Record how many copies of a book are on hand."""
    await inventory.set_stock(book_id, body.quantity)
    return StockRead(book_id=book_id, quantity=body.quantity)


async def get_stock(book_id: Id, inventory: InventoryServiceDep) -> StockRead:
    """Return how many copies of a book are on hand."""
    return StockRead(book_id=book_id, quantity=await inventory.get_stock(book_id))


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
    return router
