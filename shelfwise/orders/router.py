"""HTTP endpoints of the orders feature."""

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from shelfwise.catalog.errors import BookNotFoundError
from shelfwise.identity.dependencies import PrincipalDep
from shelfwise.inventory.errors import InsufficientStockError, InvalidQuantityError
from shelfwise.orders.dependencies import OrderSagaDep, OrderServiceDep
from shelfwise.orders.errors import (
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    InvalidQuoteError,
    OrderNotFoundError,
)
from shelfwise.orders.models import MAX_IDEMPOTENCY_KEY_LENGTH, Order
from shelfwise.orders.ports import StoredResponse
from shelfwise.orders.schemas import OrderCreate, OrderRead, QuoteRead, QuoteRequest
from shelfwise.orders.service import QuoteLine
from shelfwise.platform.money import CurrencyMismatchError
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.rate_limit import costs
from shelfwise.platform.schemas import Id
from shelfwise.tenancy.context import current_tenant_id

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


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A key of your choosing (a UUID) that names this order: send the request "
        "again with the same key and body, after a timeout, and you get the first answer "
        "instead of a second order. Kept 24 hours, per tenant.",
    ),
]
# Tells a client that this answer is the stored one of an earlier request with its key.
REPLAYED_HEADER = "Idempotent-Replayed"


def parse_key(header: str) -> str:
    """The key in an ``Idempotency-Key`` field: the draft's quoted string (``"abc"``), or the
    bare ``abc`` many clients send. Raises ``InvalidIdempotencyKeyError``."""
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    printable = all(" " <= character <= "~" and character not in '"\\' for character in value)
    if not (1 <= len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH and printable):
        raise InvalidIdempotencyKeyError(
            f"An Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII "
            "characters, without quotes or backslashes inside."
        )
    return value


def fingerprint(canonical_body: str) -> str:
    """The request's fingerprint: a digest of its body in one canonical form."""
    return hashlib.sha256(canonical_body.encode()).hexdigest()


def _created(order: Order) -> StoredResponse:
    return StoredResponse(status.HTTP_201_CREATED, OrderRead.from_order(order).model_dump_json())


async def place_order(
    body: OrderCreate,
    orders: OrderServiceDep,
    saga: OrderSagaDep,
    principal: PrincipalDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Place an order: priced like a quote, with the copies taken off the stock. It is answered
    `pending`; payment, shipping and confirmation follow (`GET /orders/{order_id}`)."""
    lines = [QuoteLine(book_id=line.book_id, quantity=line.quantity) for line in body.lines]
    placed: Order | None
    if idempotency_key is None:
        placed = await orders.place_order(lines, placed_by=principal.user_id)
        response = _created(placed)
    else:
        if len(request.headers.getlist("idempotency-key")) > 1:
            # Which one would the client mean? Taking the first would order again later.
            raise InvalidIdempotencyKeyError("Send one Idempotency-Key, not several.")
        outcome = await orders.place_order_once(
            lines,
            key=parse_key(idempotency_key),
            # The body as parsed, in one form: spacing and key order do not make it another.
            fingerprint=fingerprint(body.model_dump_json()),
            respond=_created,
            placed_by=principal.user_id,
        )
        response, placed = outcome.response, outcome.order
    headers = {"Location": f"/orders/{json.loads(response.body)['id']}"}
    if placed is None:
        headers[REPLAYED_HEADER] = "true"
    else:
        # In a task of the saga's: its steps are neither the client's wait nor the request's.
        saga.start(current_tenant_id(), placed.id)
    return Response(response.body, response.status_code, headers, media_type="application/json")


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
        response_model=OrderRead,
        responses=problem_responses(
            *PRICING_ERRORS,
            InvalidIdempotencyKeyError,
            IdempotencyKeyInUseError,
            IdempotencyKeyReusedError,
        ),
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
