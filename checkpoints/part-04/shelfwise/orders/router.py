"""HTTP endpoints of the orders feature."""

from typing import Annotated

from fastapi import APIRouter, Depends

from shelfwise.catalog.repository import SqlBookRepository
from shelfwise.inventory.repository import SqlStockRepository
from shelfwise.orders.schemas import QuoteRead, QuoteRequest
from shelfwise.orders.service import OrderService, QuoteLine
from shelfwise.platform.db import SessionDep


def order_service(session: SessionDep) -> OrderService:
    """Dependency: an OrderService reading through the request's session."""
    return OrderService(SqlBookRepository(session), SqlStockRepository(session))


OrderServiceDep = Annotated[OrderService, Depends(order_service)]


async def quote(body: QuoteRequest, orders: OrderServiceDep) -> QuoteRead:
    """Price a basket of books, with the bulk discount, without placing an order."""
    lines = [QuoteLine(book_id=line.book_id, quantity=line.quantity) for line in body.lines]
    return QuoteRead.from_quote(await orders.quote(lines))


def create_router() -> APIRouter:
    """The orders routes, on a new router for each app."""
    router = APIRouter(tags=["orders"])
    router.add_api_route("/orders/quote", quote, methods=["POST"])
    return router
