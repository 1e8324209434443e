"""The order saga: reserve → charge → ship → confirm, its compensations and its recovery."""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from shelfwise.inventory.repository import SqlStockRepository
from shelfwise.orders import saga as saga_module
from shelfwise.orders.dependencies import get_order_saga
from shelfwise.orders.gateways import FakeCarrier, FakePaymentGateway, StepUnavailableError
from shelfwise.orders.models import Order, OrderStatus
from shelfwise.orders.repository import SqlOrderRepository
from shelfwise.orders.saga import OrderSaga
from shelfwise.orders.upkeep import tidy_orders
from shelfwise.platform.money import Money
from shelfwise.tenancy.context import tenant_context
from tests.conftest import client_for
from tests.factories import Tenants, a_stocked_book, raise_limits


@dataclass
class Confirmations:
    """The saga's events: which orders it announced as confirmed."""

    orders: list[int] = field(default_factory=list)

    async def order_confirmed(self, order: Order) -> None:
        self.orders.append(order.id)


@dataclass
class CountingGateway(FakePaymentGateway):
    """The fake gateway, counting calls: a retried step calls again, with the same key."""

    calls: list[str] = field(default_factory=list)
    down: bool = False

    async def charge(self, key: str, amount: Money) -> str:
        self.calls.append(key)
        if self.down:
            raise StepUnavailableError("the gateway times out")
        return await super().charge(key, amount)


class NoSaga:
    """Starts nothing: the test advances the saga itself."""

    def start(self, tenant_id: UUID, order_id: int) -> None:
        pass


@pytest.fixture
def gateway() -> CountingGateway:
    return CountingGateway()


@pytest.fixture
def confirmations() -> Confirmations:
    return Confirmations()


@pytest.fixture
def saga(app: FastAPI, gateway: CountingGateway, confirmations: Confirmations) -> OrderSaga:
    """The app's saga, on the test's gateway and events; requests place orders and stop."""
    app.dependency_overrides[get_order_saga] = NoSaga
    return OrderSaga(app.state.database, gateway, FakeCarrier(max_copies=10), confirmations)


async def placed(
    client: httpx.AsyncClient, copies: int = 2, price: str = "12.50", *, book: int = 1
) -> int:
    """A pending order of ``copies`` of a new book (20 in stock), the test's ``book``-th;
    returns its id."""
    book_id = await a_stocked_book(client, 20, price=price, number=book)
    answer = await client.post(
        "/orders", json={"lines": [{"book_id": book_id, "quantity": copies}]}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "pending"
    order_id: int = answer.json()["id"]
    return order_id


async def order(app: FastAPI, order_id: int) -> Order:
    async with app.state.database.session() as session:
        found = await SqlOrderRepository(session).get(order_id)
    assert found is not None
    return found


async def stock_of(client: httpx.AsyncClient, order: Order) -> int:
    book_id = order.items[0].book_id
    quantity: int = (await client.get(f"/books/{book_id}/stock")).json()["quantity"]
    return quantity


async def test_a_saga_charges_ships_and_confirms_then_announces_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    saga: OrderSaga,
    gateway: CountingGateway,
    confirmations: Confirmations,
) -> None:
    order_id = await placed(client)

    assert await saga.advance(order_id) is OrderStatus.CONFIRMED
    assert await saga.advance(order_id) is OrderStatus.CONFIRMED  # nothing left to do

    done = await order(app, order_id)
    assert done.payment_id is not None and done.payment_id.startswith("ch_")
    assert done.tracking_number is not None and done.tracking_number.startswith("SW")
    assert list(gateway.charges.values()) == [done.total]
    assert confirmations.orders == [order_id]
    assert await stock_of(client, done) == 18


async def test_a_declined_charge_puts_the_stock_back_and_cancels(
    app: FastAPI, client: httpx.AsyncClient, saga: OrderSaga, confirmations: Confirmations
) -> None:
    order_id = await placed(client, copies=2, price="6000.00")  # 12,000.00: above the limit

    assert await saga.advance(order_id) is OrderStatus.CANCELLED

    cancelled = await order(app, order_id)
    assert cancelled.failure_reason is not None and "declined" in cancelled.failure_reason
    assert (cancelled.payment_id, cancelled.refund_id) == (None, None)
    assert await stock_of(client, cancelled) == 20
    assert confirmations.orders == []


async def test_a_refused_shipment_refunds_the_charge_and_puts_the_stock_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    saga: OrderSaga,
    gateway: CountingGateway,
    confirmations: Confirmations,
) -> None:
    order_id = await placed(client, copies=11)  # the test's carrier takes 10 at most

    assert await saga.advance(order_id) is OrderStatus.CANCELLED

    cancelled = await order(app, order_id)
    assert cancelled.failure_reason is not None and "refused" in cancelled.failure_reason
    assert cancelled.refund_id is not None and cancelled.refund_id.startswith("re_")
    assert list(gateway.refunds.values()) == [cancelled.payment_id]
    assert await stock_of(client, cancelled) == 20
    assert confirmations.orders == []


async def test_a_gateway_that_is_down_leaves_the_saga_for_recovery(
    app: FastAPI, client: httpx.AsyncClient, saga: OrderSaga, gateway: CountingGateway
) -> None:
    order_id = await placed(client)
    gateway.down = True

    assert await saga.advance(order_id) is None
    assert (await order(app, order_id)).status is OrderStatus.PENDING

    gateway.down = False
    assert await saga.recover(timedelta(0)) == 1
    assert (await order(app, order_id)).status is OrderStatus.CONFIRMED


async def test_a_crash_after_the_charge_is_finished_by_recovery_without_charging_twice(
    app: FastAPI,
    client: httpx.AsyncClient,
    gateway: CountingGateway,
    confirmations: Confirmations,
    saga: OrderSaga,
) -> None:
    order_id = await placed(client)
    charged = asyncio.Event()

    class ChargesThenHangs(CountingGateway):
        async def charge(self, key: str, amount: Money) -> str:
            await super().charge(key, amount)
            charged.set()
            await asyncio.Event().wait()  # the process dies before it hears back
            raise AssertionError("unreachable")

    dying = ChargesThenHangs(charges=gateway.charges, calls=gateway.calls)
    running = asyncio.create_task(
        OrderSaga(app.state.database, dying, FakeCarrier(), confirmations).advance(order_id)
    )
    await asyncio.wait_for(charged.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await order(app, order_id)).status is OrderStatus.PENDING  # nothing recorded

    assert await saga.recover(timedelta(0)) == 1  # a new process, the same gateway

    assert (await order(app, order_id)).status is OrderStatus.CONFIRMED
    assert len(gateway.calls) == 2 and len(set(gateway.calls)) == 1  # charged again, same key
    assert len(gateway.charges) == 1  # so the money moved once
    assert confirmations.orders == [order_id]


async def test_a_crash_after_deciding_to_compensate_still_refunds_once(
    app: FastAPI, client: httpx.AsyncClient, saga: OrderSaga, gateway: CountingGateway
) -> None:
    order_id = await placed(client, copies=11)
    refunds = 0

    class RefundHangs(CountingGateway):
        async def refund(self, key: str, charge_id: str, amount: Money) -> str:
            nonlocal refunds
            refunds += 1
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    hanging = RefundHangs(charges=gateway.charges, refunds=gateway.refunds)
    running = asyncio.create_task(
        OrderSaga(app.state.database, hanging, FakeCarrier(max_copies=10)).advance(order_id)
    )
    while refunds == 0:
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # The decision was stored before the refund was asked for.
    assert (await order(app, order_id)).status is OrderStatus.COMPENSATING

    await saga.recover(timedelta(0))

    cancelled = await order(app, order_id)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.refund_id is not None
    assert len(gateway.refunds) == 1
    assert await stock_of(client, cancelled) == 20


async def test_two_runners_at_once_move_the_order_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    saga: OrderSaga,
    gateway: CountingGateway,
    confirmations: Confirmations,
) -> None:
    order_id = await placed(client)

    await asyncio.gather(saga.advance(order_id), saga.advance(order_id), saga.advance(order_id))

    done = await order(app, order_id)
    assert done.status is OrderStatus.CONFIRMED
    assert len(gateway.charges) == 1
    assert confirmations.orders == [order_id]  # announced by the runner that confirmed it
    # Four steps, each one version: placed (1), paid, shipped, confirmed.
    assert done.version == 4


async def test_recovery_takes_up_stalled_sagas_of_every_active_tenant_only_when_stale(
    app: FastAPI, tenants: Tenants, client: httpx.AsyncClient, saga: OrderSaga
) -> None:
    mine = await placed(client)
    async with client_for(app, tenants.b) as theirs:
        their_order = await placed(theirs)

    assert await tidy_orders(app.state.database, saga, timedelta(hours=1)) == 0  # too fresh

    assert await tidy_orders(app.state.database, saga, timedelta(0)) == 2
    assert (await order(app, mine)).status is OrderStatus.CONFIRMED
    with tenant_context(tenants.b.id):
        assert (await order(app, their_order)).status is OrderStatus.CONFIRMED


async def test_through_the_api_an_order_is_confirmed_after_its_response(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 20)

    answer = await client.post("/orders", json={"lines": [{"book_id": book_id, "quantity": 1}]})
    await app.state.order_saga.settled()  # it runs in a task of its own, after the response
    fetched = await client.get(answer.headers["location"])

    assert answer.json()["status"] == "pending"
    assert fetched.json()["status"] == "confirmed"
    # Shipped: the copy left the shelf, and nothing is reserved for it any more.
    async with app.state.database.session() as session:
        level = await SqlStockRepository(session).level(book_id)
    assert (level.quantity, level.reserved) == (19, 0)


async def test_of_n_buyers_for_k_copies_exactly_k_order_and_the_rest_are_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    buyers, copies = 20, 5
    await raise_limits(app, buyers)
    book_id = await a_stocked_book(client, copies)

    answers = await asyncio.gather(
        *(
            client.post("/orders", json={"lines": [{"book_id": book_id, "quantity": 1}]})
            for _ in range(buyers)
        )
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * copies + [409] * (buyers - copies), [a.text for a in answers]
    refused = [answer.json()["code"] for answer in answers if answer.status_code == 409]
    assert set(refused) == {"insufficient_stock"}
    assert (await client.get(f"/books/{book_id}/stock")).json()["quantity"] == 0
    async with app.state.database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == copies


async def test_a_stocktake_while_an_order_is_pending_counts_its_reserved_copies_once(
    app: FastAPI, client: httpx.AsyncClient, saga: OrderSaga
) -> None:
    order_id = await placed(client, copies=2, price="6000.00")  # to be declined
    book_id = (await order(app, order_id)).items[0].book_id
    url = f"/books/{book_id}/stock"

    # The clerk counts 20 on the shelf: the order's 2 are still there, reserved.
    counted = await client.put(url, json={"quantity": 20})
    below = await client.put(url, json={"quantity": 1})
    await saga.advance(order_id)  # declined: its 2 copies can be ordered again

    assert counted.json()["quantity"] == 18  # what can be ordered
    assert (below.status_code, below.json()["code"]) == (409, "count_below_reserved")
    assert (await client.get(url)).json()["quantity"] == 20  # not 22


async def test_two_runners_compensating_at_once_refund_and_release_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    saga: OrderSaga,
    gateway: CountingGateway,
) -> None:
    order_id = await placed(client, copies=11)  # refused by the carrier: compensated

    outcomes = await asyncio.gather(
        *(saga.advance(order_id) for _ in range(3)), return_exceptions=True
    )

    assert not [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    cancelled = await order(app, order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert len(gateway.refunds) == 1
    assert await stock_of(client, cancelled) == 20


async def test_an_order_that_keeps_failing_does_not_hold_up_the_others(
    app: FastAPI, client: httpx.AsyncClient, saga: OrderSaga
) -> None:
    broken = await placed(client)
    healthy = await placed(client, book=2)

    class BrokenForOne(CountingGateway):
        async def charge(self, key: str, amount: Money) -> str:
            if key.endswith(f"order-{broken}:charge"):
                raise ValueError("a bug in the adapter, for this order only")
            return await super().charge(key, amount)

    recovering = OrderSaga(app.state.database, BrokenForOne(), FakeCarrier())
    assert await recovering.recover(timedelta(0)) == 2

    assert (await order(app, broken)).status is OrderStatus.PENDING
    assert (await order(app, healthy)).status is OrderStatus.CONFIRMED


async def test_a_gateway_slower_than_the_step_timeout_leaves_the_saga_for_later(
    app: FastAPI, client: httpx.AsyncClient, saga: OrderSaga, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = await placed(client)
    monkeypatch.setattr(saga_module, "STEP_TIMEOUT_SECONDS", 0.05)
    slow = OrderSaga(app.state.database, FakePaymentGateway(delay_seconds=1), FakeCarrier())

    assert await slow.advance(order_id) is None

    assert (await order(app, order_id)).status is OrderStatus.PENDING


async def test_sagas_started_after_responses_run_outside_the_request_and_settle(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 20)
    slow_saga = OrderSaga(app.state.database, FakePaymentGateway(delay_seconds=1.5), FakeCarrier())
    app.state.order_saga = slow_saga
    line = {"lines": [{"book_id": book_id, "quantity": 1}]}

    started = time.monotonic()
    answer = await client.post("/orders", json=line)
    answered = time.monotonic() - started
    await slow_saga.settled()

    assert answered < 1.5  # the charge was not the request's to wait for
    fetched = await client.get(answer.headers["location"])
    assert fetched.json()["status"] == "confirmed"
