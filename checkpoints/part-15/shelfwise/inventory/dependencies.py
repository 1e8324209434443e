"""How the inventory's services are built for a request."""

from typing import Annotated

from fastapi import Depends

from shelfwise.catalog.dependencies import BookRepositoryDep
from shelfwise.inventory.ports import StockRepository
from shelfwise.inventory.repository import SqlStockRepository, SqlStockSessions
from shelfwise.inventory.service import InventoryService, StockReport
from shelfwise.platform.dependencies import DatabaseDep, SessionDep, UnitOfWorkDep


async def get_stock_repository(session: SessionDep) -> StockRepository:
    """Stock levels in the request's session."""
    return SqlStockRepository(session)


StockRepositoryDep = Annotated[StockRepository, Depends(get_stock_repository)]


async def get_inventory_service(
    books: BookRepositoryDep, stock: StockRepositoryDep, uow: UnitOfWorkDep
) -> InventoryService:
    """An InventoryService working in the request's session."""
    return InventoryService(books, stock, uow)


InventoryServiceDep = Annotated[InventoryService, Depends(get_inventory_service)]


async def get_stock_report(database: DatabaseDep) -> StockReport:
    """A StockReport that opens its own sessions: it must not use the request's session. They
    are read sessions, so they take the same route, breaker and fallback as a GET's."""
    return StockReport(SqlStockSessions(lambda: database.session(read_only=True)))


StockReportDep = Annotated[StockReport, Depends(get_stock_report)]
