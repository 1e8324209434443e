"""HTTP endpoints of the orders feature."""

from fastapi import APIRouter, status

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.inventory.errors import InsufficientStockError, InvalidQuantityError
from shelfwise.orders.dependencies import OrderServiceDep
from shelfwise.orders.errors import InvalidQuoteError, OrderNotFoundError
from shelfwise.orders.schemas import OrderCreate, OrderRead, QuoteRead, QuoteRequest
from shelfwise.orders.service import QuoteLine
from shelfwise.platform.money import CurrencyMismatchError
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.rate_limit import costs
from shelfwise.platform.schemas import Id

# Placing an order can fail in every way pricing can.
PRICING_ERRORS = (
    InvalidQuoteError,
    InvalidQuantityError,
    BookNotFoundError,
    InsufficientStockError,
    CurrencyMismatchError,
)


async def quote(body: QuoteRequest, orders: OrderServiceDep) -> QuoteRead:
    """Price a basket of books, with the bulk discount, without placing an order."""
    lines = [QuoteLine(book_id=line.book_id, quantity=line.quantity) for line in body.lines]
    return QuoteRead.from_quote(await orders.quote(lines))


async def place_order(body: OrderCreate, orders: OrderServiceDep) -> OrderRead:
    """Place an order: priced like a quote, with the copies taken off the stock."""
    lines = [QuoteLine(book_id=line.book_id, quantity=line.quantity) for line in body.lines]
    return OrderRead.from_order(await orders.place_order(lines))


async def get_order(order_id: Id, orders: OrderServiceDep) -> OrderRead:
    """Return one order with its items."""
    return OrderRead.from_order(await orders.get_order(order_id))


def create_router() -> APIRouter:
    """The orders routes, on a new router for each app."""
    router = APIRouter(tags=["orders"])
    router.add_api_route(
        "/orders/quote", quote, methods=["POST"], responses=problem_responses(*PRICING_ERRORS)
    )
    router.add_api_route(
        "/orders",
        place_order,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        responses=problem_responses(*PRICING_ERRORS),
        # A transaction with a row lock per book, and three jobs: five times a read.
        openapi_extra=costs(5),
    )
    router.add_api_route(
        "/orders/{order_id}",
        get_order,
        methods=["GET"],
        responses=problem_responses(OrderNotFoundError),
    )
    return router
