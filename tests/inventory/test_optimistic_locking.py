"""Stock changes that race: versions refuse a lost update; adjustments retry; ETag/If-Match."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from shelfwise.inventory.dependencies import get_stock_repository
from shelfwise.inventory.models import Stock
from shelfwise.inventory.ports import StockRepository
from shelfwise.inventory.repository import SqlStockRepository
from shelfwise.inventory.service import ADJUST_ATTEMPTS
from shelfwise.platform.dependencies import SessionDep
from shelfwise.platform.errors import ConcurrentUpdateError
from shelfwise.platform.unit_of_work import commit_versioned
from tests.factories import a_stocked_book, book_payload, raise_limits


async def test_a_write_based_on_a_stale_read_is_refused_not_lost(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    database = app.state.database
    async with database.session() as first, database.session() as second:
        # Both read 10, then each adds its delivery to what it read.
        mine = await first.get(Stock, book_id)
        theirs = await second.get(Stock, book_id)
        assert mine is not None and theirs is not None
        mine.quantity += 5
        theirs.quantity += 3
        await commit_versioned(first)
        with pytest.raises(ConcurrentUpdateError):
            await commit_versioned(second)  # without a version, this would set 13 over 15

    assert (await client.get(f"/books/{book_id}/stock")).json()["quantity"] == 15


async def test_of_concurrent_adjustments_none_is_lost(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await raise_limits(app, 20)  # before the tenant's first request: limits are read once
    book_id = await a_stocked_book(client, 100)
    changes = [+3, -2] * 10

    answers = await asyncio.gather(
        *(
            client.post(f"/books/{book_id}/stock/adjustments", json={"change": change})
            for change in changes
        )
    )

    # Each adjustment either counted or, having lost every retry, was refused and changed
    # nothing; none was overwritten. (Under this much contention on PostgreSQL some may lose.)
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 409} and 200 in statuses, [a.text for a in answers]
    counted = sum(change for change, status in zip(changes, statuses, strict=True) if status == 200)
    stock = await client.get(f"/books/{book_id}/stock")
    assert stock.json()["quantity"] == 100 + counted
    # One version per change: the stocktake's, then each adjustment that counted.
    assert stock.headers["etag"] == f'"{1 + statuses.count(200)}"'


async def test_an_order_between_the_read_and_the_write_makes_the_adjustment_retry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    database = app.state.database
    reads = 0

    class AnOrderSlipsIn(SqlStockRepository):
        """After the adjustment's first read, an order's single UPDATE takes 4 copies."""

        async def get(self, book_id: int) -> Stock | None:
            nonlocal reads
            stock = await super().get(book_id)
            reads += 1
            if reads == 1:
                async with database.session() as other:
                    assert await SqlStockRepository(other).decrement_if_available(book_id, 4)
                    await other.commit()
            return stock

    async def slipping(session: SessionDep) -> StockRepository:
        return AnOrderSlipsIn(session)

    app.dependency_overrides[get_stock_repository] = slipping
    answer = await client.post(f"/books/{book_id}/stock/adjustments", json={"change": 5})
    app.dependency_overrides.clear()

    assert answer.status_code == 200, answer.text
    assert answer.json()["quantity"] == 10 - 4 + 5  # the order's 4 are not undone
    assert reads == 2  # read, lost, read again


async def test_an_adjustment_that_always_loses_answers_409_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book_id = await a_stocked_book(client, 10)
    database = app.state.database

    class AlwaysOvertaken(SqlStockRepository):
        async def get(self, book_id: int) -> Stock | None:
            stock = await super().get(book_id)
            async with database.session() as other:  # someone else adds a copy, every time
                level = await SqlStockRepository(other).level(book_id)
                await SqlStockRepository(other).set_quantity(book_id, level.quantity + 1)
                await other.commit()
            return stock

    async def overtaken(session: SessionDep) -> StockRepository:
        return AlwaysOvertaken(session)

    app.dependency_overrides[get_stock_repository] = overtaken
    answer = await client.post(f"/books/{book_id}/stock/adjustments", json={"change": 5})
    app.dependency_overrides.clear()

    assert answer.status_code == 409
    assert answer.json()["code"] == "stock_contended"
    # Only the other writer's copies arrived: one per attempt.
    stock = (await client.get(f"/books/{book_id}/stock")).json()
    assert stock["quantity"] == 10 + ADJUST_ATTEMPTS


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [(0, 422, "invalid_quantity"), (-11, 409, "insufficient_stock"), (10**6 + 1, 422, None)],
)
async def test_adjustments_out_of_bounds_change_nothing(
    client: httpx.AsyncClient, change: int, status: int, code: str | None
) -> None:
    book_id = await a_stocked_book(client, 10)

    answer = await client.post(f"/books/{book_id}/stock/adjustments", json={"change": change})

    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code
    assert (await client.get(f"/books/{book_id}/stock")).json()["quantity"] == 10


async def test_an_adjustment_of_a_book_never_stocked_starts_from_zero(
    client: httpx.AsyncClient,
) -> None:
    author = await client.post("/authors", json={"name": "A"})
    book = await client.post("/books", json=book_payload(author.json()["id"]))
    url = f"/books/{book.json()['id']}/stock"

    assert (await client.get(url)).headers["etag"] == '"0"'
    answer = await client.post(f"{url}/adjustments", json={"change": 4})

    assert (answer.status_code, answer.json()["quantity"]) == (200, 4)
    assert answer.headers["etag"] == '"1"'


# --- ETag and If-Match ---------------------------------------------------------------------


async def test_a_change_with_the_etag_it_read_succeeds_and_gets_a_new_one(
    client: httpx.AsyncClient,
) -> None:
    book_id = await a_stocked_book(client, 10)
    url = f"/books/{book_id}/stock"
    tag = (await client.get(url)).headers["etag"]

    answer = await client.put(url, json={"quantity": 7}, headers={"If-Match": tag})

    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] != tag
    assert answer.headers["etag"] == (await client.get(url)).headers["etag"]


async def test_a_change_with_a_stale_etag_is_412_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    book_id = await a_stocked_book(client, 10)
    url = f"/books/{book_id}/stock"
    tag = (await client.get(url)).headers["etag"]
    await client.put(url, json={"quantity": 8}, headers={"If-Match": tag})  # someone else

    answer = await client.put(url, json={"quantity": 7}, headers={"If-Match": tag})

    assert answer.status_code == 412
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "precondition_failed"
    assert (await client.get(url)).json()["quantity"] == 8


@pytest.mark.parametrize(
    "if_match",
    ['W/"1"', "1", '"1', '"01"', '""', '"99999999999999999999"', '"-1"', '"١"', "x" * 8000, ", ,"],
)
async def test_if_match_values_that_name_no_version_fail_the_condition(
    client: httpx.AsyncClient, if_match: str
) -> None:
    book_id = await a_stocked_book(client, 10)  # at version 1
    url = f"/books/{book_id}/stock"

    # Sent as the bytes a client would put on the wire (httpx refuses non-ASCII strings).
    headers = {b"If-Match": if_match.encode()}
    answer = await client.put(url, json={"quantity": 7}, headers=headers)

    assert answer.status_code == 412, answer.text
    assert (await client.get(url)).json()["quantity"] == 10


@pytest.mark.parametrize("if_match", ["*", '"7", "1"'])
async def test_if_match_any_or_a_list_that_holds_the_version_succeeds(
    client: httpx.AsyncClient, if_match: str
) -> None:
    book_id = await a_stocked_book(client, 10)

    answer = await client.put(
        f"/books/{book_id}/stock", json={"quantity": 7}, headers={"If-Match": if_match}
    )

    assert answer.status_code == 200, answer.text


async def test_if_match_zero_creates_a_count_only_once(client: httpx.AsyncClient) -> None:
    author = await client.post("/authors", json={"name": "A"})
    book = await client.post("/books", json=book_payload(author.json()["id"]))
    url = f"/books/{book.json()['id']}/stock"

    first = await client.put(url, json={"quantity": 3}, headers={"If-Match": '"0"'})
    second = await client.put(url, json={"quantity": 9}, headers={"If-Match": '"0"'})

    assert (first.status_code, second.status_code) == (200, 412)
    assert (await client.get(url)).json()["quantity"] == 3


async def test_of_many_writers_with_the_same_etag_exactly_one_wins(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await raise_limits(app, 10)
    book_id = await a_stocked_book(client, 10)
    url = f"/books/{book_id}/stock"
    tag = (await client.get(url)).headers["etag"]

    answers = await asyncio.gather(
        *(
            client.put(url, json={"quantity": quantity}, headers={"If-Match": tag})
            for quantity in range(10)
        )
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [412] * 9
    [winner] = [answer for answer in answers if answer.status_code == 200]
    assert (await client.get(url)).json()["quantity"] == winner.json()["quantity"]


async def test_if_match_on_several_lines_is_one_list(client: httpx.AsyncClient) -> None:
    book_id = await a_stocked_book(client, 10)  # at version 1

    answer = await client.put(
        f"/books/{book_id}/stock",
        json={"quantity": 7},
        headers=[("If-Match", '"7"'), ("If-Match", '"1"')],
    )

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("change", [True, "3", 1.5])
async def test_an_adjustment_is_a_whole_number_of_copies(
    client: httpx.AsyncClient, change: object
) -> None:
    book_id = await a_stocked_book(client, 10)

    answer = await client.post(f"/books/{book_id}/stock/adjustments", json={"change": change})

    assert answer.status_code == 422
    assert (await client.get(f"/books/{book_id}/stock")).json()["quantity"] == 10
