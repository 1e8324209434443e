"""Idempotency-Key on POST /orders: one order per key, whatever the client repeats."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from shelfwise.orders.errors import IdempotencyKeyInUseError
from shelfwise.orders.models import IdempotencyRecord, Order
from shelfwise.orders.ports import Claim, StoredResponse
from shelfwise.orders.repository import SqlIdempotencyKeys
from shelfwise.orders.saga import OrderSaga
from shelfwise.orders.upkeep import tidy_orders
from tests.conftest import client_for
from tests.factories import Tenants, a_stocked_book, raise_limits, stock_of

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
HOUR = timedelta(hours=1)


def copies(book_id: int, quantity: int = 2) -> dict[str, Any]:
    return {"lines": [{"book_id": book_id, "quantity": quantity}]}


async def orders_in(app: FastAPI) -> int:
    async with app.state.database.session() as session:
        count: int = await session.scalar(select(func.count()).select_from(Order))
        return count


async def test_a_repeat_gets_the_first_answer_and_orders_nothing_more(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)

    first = await client.post("/orders", json=copies(book_id), headers={"Idempotency-Key": KEY})
    # The same body, spelt differently: it is the same request.
    again = await client.post(
        "/orders",
        content=f'{{ "lines" : [ {{"quantity": 2, "book_id": {book_id}}} ] }}',
        headers={"Idempotency-Key": f'"{KEY}"', "Content-Type": "application/json"},
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()  # the stored answer, "pending" as it was
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await orders_in(app) == 1
    assert await stock_of(client, book_id) == 8
    await app.state.order_saga.settled()
    assert len(app.state.order_saga._gateway.charges) == 1


async def test_the_same_key_with_another_body_is_422_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    await client.post("/orders", json=copies(book_id), headers={"Idempotency-Key": KEY})

    other = await client.post("/orders", json=copies(book_id, 3), headers={"Idempotency-Key": KEY})

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert (await orders_in(app), await stock_of(client, book_id)) == (1, 8)


async def test_a_repeat_while_the_first_is_in_flight_is_409(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    body = copies(book_id)
    # An attempt that has claimed the key and not finished: what a concurrent request sees.
    async with app.state.database.session() as session:
        keys = SqlIdempotencyKeys(
            session, app.state.database.session, ttl=timedelta(hours=1), lease=timedelta(minutes=1)
        )
        from shelfwise.orders.router import fingerprint
        from shelfwise.orders.schemas import OrderCreate

        await keys.claim(KEY, fingerprint(OrderCreate.model_validate(body).model_dump_json()))

    repeat = await client.post("/orders", json=body, headers={"Idempotency-Key": KEY})

    assert repeat.status_code == 409
    assert repeat.json()["code"] == "idempotency_key_in_use"
    assert (await orders_in(app), await stock_of(client, book_id)) == (0, 10)


async def test_a_claim_whose_attempt_died_is_taken_over_after_its_lease(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    body = copies(book_id)
    from shelfwise.orders.router import fingerprint
    from shelfwise.orders.schemas import OrderCreate

    async with app.state.database.session() as session:
        dead = SqlIdempotencyKeys(
            session, app.state.database.session, ttl=timedelta(hours=1), lease=timedelta(0)
        )
        await dead.claim(KEY, fingerprint(OrderCreate.model_validate(body).model_dump_json()))

    retry = await client.post("/orders", json=body, headers={"Idempotency-Key": KEY})

    assert retry.status_code == 201, retry.text
    assert (await orders_in(app), await stock_of(client, book_id)) == (1, 8)


async def test_a_failed_attempt_gives_its_key_up(app: FastAPI, client: httpx.AsyncClient) -> None:
    book_id = await a_stocked_book(client, 1)
    body = copies(book_id, 2)

    refused = await client.post("/orders", json=body, headers={"Idempotency-Key": KEY})
    await client.put(f"/books/{book_id}/stock", json={"quantity": 5})
    retried = await client.post("/orders", json=body, headers={"Idempotency-Key": KEY})

    assert (refused.status_code, retried.status_code) == (409, 201)
    assert refused.json()["code"] == "insufficient_stock"
    assert await orders_in(app) == 1


async def test_an_expired_key_may_name_a_new_request(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    first = await client.post("/orders", json=copies(book_id), headers={"Idempotency-Key": KEY})
    async with app.state.database.session() as session:
        await session.execute(update(IdempotencyRecord).values(expires_at=func.now()))
        await session.commit()

    later = await client.post("/orders", json=copies(book_id, 3), headers={"Idempotency-Key": KEY})

    assert (first.status_code, later.status_code) == (201, 201)
    assert later.json()["id"] != first.json()["id"]
    assert await stock_of(client, book_id) == 10 - 2 - 3


async def test_upkeep_deletes_expired_keys_only(app: FastAPI, client: httpx.AsyncClient) -> None:
    book_id = await a_stocked_book(client, 10)
    for key in ("old", "new"):
        await client.post("/orders", json=copies(book_id, 1), headers={"Idempotency-Key": key})
    async with app.state.database.session() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old")
            .values(expires_at=func.now())
        )
        await session.commit()

    saga: OrderSaga = app.state.order_saga
    await tidy_orders(app.state.database, saga, timedelta(hours=1))

    async with app.state.database.session() as session:
        assert list(await session.scalars(select(IdempotencyRecord.key))) == ["new"]


async def test_keys_are_per_tenant(
    app: FastAPI, tenants: Tenants, client: httpx.AsyncClient
) -> None:
    mine = await a_stocked_book(client, 10)
    async with client_for(app, tenants.b) as theirs:
        their_book = await a_stocked_book(theirs, 10)
        await client.post("/orders", json=copies(mine), headers={"Idempotency-Key": KEY})

        # B's same key names B's own request: not A's replay, not a conflict with A's body.
        answer = await theirs.post(
            "/orders", json=copies(their_book), headers={"Idempotency-Key": KEY}
        )

        assert answer.status_code == 201, answer.text
        assert "idempotent-replayed" not in answer.headers
        assert answer.json()["items"][0]["book_id"] == their_book
        assert (await theirs.get(f"/orders/{answer.json()['id']}")).status_code == 200


@pytest.mark.parametrize(
    "key",
    ["", '""', "x" * 256, "caf\u00e9".encode("latin-1"), 'a"b', "a\\b", b"a\x00b", "\t"],
    ids=["empty", "empty quoted", "too long", "not ascii", "quote", "backslash", "nul", "tab"],
)
async def test_a_key_that_is_not_one_is_400_and_orders_nothing(
    app: FastAPI, client: httpx.AsyncClient, key: str | bytes
) -> None:
    book_id = await a_stocked_book(client, 10)

    raw = key if isinstance(key, bytes) else key.encode()
    answer = await client.post("/orders", json=copies(book_id), headers={b"Idempotency-Key": raw})

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_idempotency_key"
    assert await orders_in(app) == 0


async def test_the_longest_key_is_accepted(client: httpx.AsyncClient) -> None:
    book_id = await a_stocked_book(client, 10)

    answer = await client.post(
        "/orders", json=copies(book_id), headers={"Idempotency-Key": "k" * 255}
    )

    assert answer.status_code == 201, answer.text


async def test_concurrent_repeats_of_one_request_make_one_order_and_one_charge(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    repeats = 20
    await raise_limits(app, repeats)
    book_id = await a_stocked_book(client, 10)

    answers = await asyncio.gather(
        *(
            client.post("/orders", json=copies(book_id), headers={"Idempotency-Key": KEY})
            for _ in range(repeats)
        )
    )

    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {201, 409} and 201 in statuses, [a.text for a in answers]
    # Every 201 is the same order: the first, or its replay.
    assert len({answer.json()["id"] for answer in answers if answer.status_code == 201}) == 1
    assert await orders_in(app) == 1
    assert await stock_of(client, book_id) == 8
    await app.state.order_saga.settled()
    gateway = app.state.order_saga._gateway
    assert len(gateway.charges) == 1


async def test_an_attempt_whose_claim_was_taken_over_cannot_complete(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    database = app.state.database
    async with database.session() as session:
        slow = SqlIdempotencyKeys(session, database.session, ttl=HOUR, lease=timedelta(0))
        first = await slow.claim(KEY, "same body")
        # Its lease is over: another attempt takes the key over.
        other = SqlIdempotencyKeys(session, database.session, ttl=HOUR, lease=HOUR)
        second = await other.claim(KEY, "same body")
        assert isinstance(first, Claim) and isinstance(second, Claim)

        # The first attempt, still alive, must not store its answer (nor commit its order).
        with pytest.raises(IdempotencyKeyInUseError):
            await slow.complete(first, StoredResponse(201, "{}"))
        await other.complete(second, StoredResponse(201, '{"id": 2}'))
        await session.commit()

    assert await slow.claim(KEY, "same body") == StoredResponse(201, '{"id": 2}')


async def test_two_keys_in_one_request_are_400(app: FastAPI, client: httpx.AsyncClient) -> None:
    book_id = await a_stocked_book(client, 10)

    answer = await client.post(
        "/orders",
        json=copies(book_id),
        headers=[("Idempotency-Key", "one"), ("Idempotency-Key", "two")],
    )

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_idempotency_key"
    assert await orders_in(app) == 0
