"""HTTP endpoints of the inventory."""

from typing import Annotated

from fastapi import APIRouter, Depends

from shelfwise.catalog.repository import SqlBookRepository
from shelfwise.inventory.repository import SqlStockRepository
from shelfwise.inventory.schemas import StockRead, StockUpdate
from shelfwise.inventory.service import InventoryService
from shelfwise.platform.db import SessionDep
from shelfwise.platform.schemas import Id
from shelfwise.platform.unit_of_work import SqlUnitOfWork


def inventory_service(session: SessionDep) -> InventoryService:
    """Dependency: an InventoryService working in the request's session."""
    return InventoryService(
        SqlBookRepository(session), SqlStockRepository(session), SqlUnitOfWork(session)
    )


InventoryServiceDep = Annotated[InventoryService, Depends(inventory_service)]


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
    router.add_api_route("/books/{book_id}/stock", set_stock, methods=["PUT"])
    router.add_api_route("/books/{book_id}/stock", get_stock, methods=["GET"])
    return router
