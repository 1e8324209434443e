"""The order saga: reserve stock → charge → ship → confirm, or undo what was done.

No transaction can span a payment gateway and a carrier, so each step is a transaction of its
own, and the order's ``status`` records how far it got. Placing the order is the first step
(stock reserved, status ``pending``, in the request's transaction). Each later step:

1. reads the order (no connection is held while the outside service is called);
2. calls the outside service with a key naming the order and the step, so a repeat call after a
   crash charges or ships nothing twice;
3. writes the result and the next status under the version it read: if another process moved
   the order meanwhile, the write is refused and this runner stops.

A refusal (card declined, parcel refused) leads to compensations: before the charge, the stock
goes back; after it, the order is first marked ``compensating`` (the decision is stored before
the refund is asked for), then refunded and the stock put back. An outside service that is
down (or slower than ``STEP_TIMEOUT_SECONDS``) leaves the order where it is; recovery
(``recover``) runs every unfinished saga again.

Sagas run in tasks the saga owns, not in the request that placed the order: a request's
deadline, its admission slot and its tenant's concurrency slot end with its response.
"""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from shelfwise.inventory.repository import SqlStockRepository
from shelfwise.orders.gateways import (
    Carrier,
    PaymentGateway,
    StepRefusedError,
    StepUnavailableError,
)
from shelfwise.orders.models import FINAL_STATUSES, Order, OrderStatus, utc_now
from shelfwise.orders.ports import OrderEvents
from shelfwise.orders.repository import SqlOrderRepository
from shelfwise.platform.db import Database
from shelfwise.platform.errors import ConcurrentUpdateError
from shelfwise.platform.unit_of_work import commit_versioned
from shelfwise.tenancy.context import current_tenant_id, tenant_context

logger = logging.getLogger(__name__)

# The column is 200 characters; a gateway's message can be longer.
MAX_REASON = 200
# Orders recovered per tenant per pass: a backlog drains over passes, never all at once.
RECOVERY_BATCH = 100
# Sagas advancing at once in a process: each step holds a pooled connection, briefly; the
# others wait their turn, so a burst of orders cannot take the pool from requests.
CONCURRENT_SAGAS = 8
# How long an outside call may take before the step is left for recovery.
STEP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Transition:
    """What a step decided: the next status, the fields it sets, whether the stock goes back."""

    status: OrderStatus
    changes: Mapping[str, str] = field(default_factory=dict)
    release_stock: bool = False  # the reserved copies can be ordered again
    ship_stock: bool = False  # the reserved copies left the shelf


class OrderSaga:
    """Advances orders through their saga; safe to run for the same order in two places."""

    def __init__(
        self,
        database: Database,
        gateway: PaymentGateway,
        carrier: Carrier,
        events: OrderEvents | None = None,
    ) -> None:
        self._database = database
        self._gateway = gateway
        self._carrier = carrier
        self._events = events
        self._turns = asyncio.Semaphore(CONCURRENT_SAGAS)
        self._running: set[asyncio.Task[None]] = set()

    def start(self, tenant_id: UUID, order_id: int) -> None:
        """Run the order's saga in a task of this object's, outside the caller's request."""
        task = asyncio.create_task(self.run(tenant_id, order_id), name=f"saga-{order_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def run(self, tenant_id: UUID, order_id: int) -> None:
        """``advance``, as ``tenant_id``, waiting for a turn. Never raises: an error is logged,
        and recovery takes the saga up again later."""
        with tenant_context(tenant_id):
            try:
                async with self._turns:
                    await self.advance(order_id)
            except Exception:
                logger.exception("saga stopped", extra={"order_id": order_id})

    async def settled(self) -> None:
        """Wait until the sagas started here have stopped (tests, and a stopping process)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self, grace_seconds: float) -> None:
        """Give the running sagas ``grace_seconds`` to finish, then cancel them: each is left
        at its last committed step, for recovery."""
        try:
            async with asyncio.timeout(grace_seconds):
                await self.settled()
        except TimeoutError:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def advance(self, order_id: int) -> OrderStatus | None:
        """Take the order's steps until its saga ends or must wait; return the status it is at
        (``None``: no such order, or another runner moved it)."""
        while True:
            try:
                order, moved = await self._step(order_id)
            except ConcurrentUpdateError:
                logger.info("saga step lost to another runner", extra={"order_id": order_id})
                return None
            except (StepUnavailableError, TimeoutError) as error:
                # Left as it is: recovery runs it again later.
                logger.warning(
                    "saga step must wait", extra={"order_id": order_id, "reason": str(error)}
                )
                return None
            if order is None or order.status in FINAL_STATUSES:
                confirmed = moved and order is not None and order.status is OrderStatus.CONFIRMED
                # After the commit, as every event: a confirmation never precedes its order.
                if confirmed and order is not None and self._events is not None:
                    await self._events.order_confirmed(order)
                return None if order is None else order.status

    async def _step(self, order_id: int) -> tuple[Order | None, bool]:
        async with self._database.session() as session:
            read = await SqlOrderRepository(session).get(order_id)
        if read is None or read.status in FINAL_STATUSES:
            return read, False
        async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
            transition = await self._decide(read)
        async with self._database.session() as session:
            order = await SqlOrderRepository(session).get(order_id)
            if order is None or order.version != read.version:
                raise ConcurrentUpdateError(f"order {order_id} moved while its step ran")
            try:
                # Before the order changes: these statements flush what is pending, and the
                # order's versioned UPDATE belongs to the commit below.
                stock = SqlStockRepository(session)
                for item in sorted(order.items, key=lambda item: item.book_id):
                    if transition.release_stock:
                        await stock.release(item.book_id, item.quantity)
                    elif transition.ship_stock:
                        await stock.ship(item.book_id, item.quantity)
                order.status = transition.status
                for name, value in transition.changes.items():
                    setattr(order, name, value)
                await commit_versioned(session)  # WHERE version = <as read>
            except StaleDataError as error:  # from a flush before the commit, if any
                raise ConcurrentUpdateError(f"order {order_id} moved meanwhile") from error
        logger.info("saga step", extra={"order_id": order_id, "status": transition.status.value})
        return order, True

    async def _decide(self, order: Order) -> Transition:
        """The outside call of the order's next step, and what follows from its answer."""
        match order.status:
            case OrderStatus.PENDING:
                try:
                    charge = await self._gateway.charge(self._key(order, "charge"), order.total)
                except StepRefusedError as refusal:
                    return _failed(OrderStatus.CANCELLED, refusal, release_stock=True)
                return Transition(OrderStatus.PAID, {"payment_id": charge})
            case OrderStatus.PAID:
                copies = sum(item.quantity for item in order.items)
                try:
                    tracking = await self._carrier.ship(self._key(order, "ship"), copies)
                except StepRefusedError as refusal:
                    # Stored before the refund is asked for: a crash in between still refunds.
                    return _failed(OrderStatus.COMPENSATING, refusal)
                return Transition(
                    OrderStatus.SHIPPED, {"tracking_number": tracking}, ship_stock=True
                )
            case OrderStatus.SHIPPED:
                return Transition(OrderStatus.CONFIRMED)
            case OrderStatus.COMPENSATING:
                changes = {}
                if order.payment_id is not None:
                    changes["refund_id"] = await self._gateway.refund(
                        self._key(order, "refund"), order.payment_id, order.total
                    )
                return Transition(OrderStatus.CANCELLED, changes, release_stock=True)
        raise ValueError(f"order {order.id} is {order.status}: the saga has no step for it")

    @staticmethod
    def _key(order: Order, step: str) -> str:
        """The step's idempotency key at the outside service: one per order and step."""
        return f"shelfwise:{current_tenant_id()}:order-{order.id}:{step}"

    async def recover(self, stale_after: timedelta) -> int:
        """Advance the current tenant's unfinished sagas that have not moved for
        ``stale_after`` (the oldest first, at most ``RECOVERY_BATCH``); return how many.

        A saga whose process died, or whose outside service was down, ends here. One still
        running elsewhere may be advanced twice at once, which is safe: the steps' keys and
        versions make the second runner's work a no-op.
        """
        async with self._database.session() as session:
            order_ids = list(
                await session.scalars(
                    select(Order.id)
                    .where(
                        Order.status.not_in(FINAL_STATUSES),
                        Order.updated_at <= utc_now() - stale_after,
                    )
                    .order_by(Order.updated_at)
                    .limit(RECOVERY_BATCH)
                )
            )
        for order_id in order_ids:
            try:
                async with self._turns:
                    await self.advance(order_id)
            except Exception:
                # One order that keeps failing must not hold up the ones after it.
                logger.exception("saga recovery failed", extra={"order_id": order_id})
        return len(order_ids)


def _failed(
    status: OrderStatus, refusal: StepRefusedError, *, release_stock: bool = False
) -> Transition:
    return Transition(status, {"failure_reason": str(refusal)[:MAX_REASON]}, release_stock)
