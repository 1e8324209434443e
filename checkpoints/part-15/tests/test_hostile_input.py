"""A hostile client gets a 4xx problem, never a 500, and changes nothing.

Every bound here is one the database would enforce with an error of its own: 32-bit integers,
column lengths, no NUL in text, NUMERIC(12, 2) amounts. The API refuses first, by name.
"""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shelfwise.catalog.models import Author, Book
from shelfwise.inventory.models import Stock
from shelfwise.orders.models import Order
from shelfwise.platform.db import create_engine
from tests.factories import book_payload, isbn13, set_tenant_setting

TOO_BIG = 2**31  # one past PostgreSQL's INTEGER
CSV_HEADER = "isbn,title,author_id,price_amount,price_currency\n"


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            model.__name__: await connection.scalar(select(func.count()).select_from(model)) or 0
            for model in (Author, Book, Stock, Order)
        }


@pytest.fixture
async def stocked_book(client: httpx.AsyncClient) -> dict[str, Any]:
    """One author, one book at 9999.99 with 5 copies in stock."""
    author = (await client.post("/authors", json={"name": "Octavia E. Butler"})).json()
    payload = book_payload(author["id"], price={"amount": "9999.99", "currency": "USD"})
    book: dict[str, Any] = (await client.post("/books", json=payload)).json()
    await client.put(f"/books/{book['id']}/stock", json={"quantity": 5})
    return book


@pytest.fixture
async def app_engine(database_url: str) -> Any:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


HOSTILE_REQUESTS = [
    ("GET", f"/books/{TOO_BIG}", None),
    ("GET", "/books/1.0", None),
    ("GET", "/books/true", None),
    ("GET", "/authors/0", None),
    ("GET", f"/books?offset={TOO_BIG}", None),
    ("GET", "/books?limit=true", None),
    ("GET", "/books?q=%00", None),
    ("GET", f"/books?q={'x' * 201}", None),
    ("GET", f"/stock?book_id={TOO_BIG}", None),
    ("GET", f"/orders/{TOO_BIG}", None),
    ("POST", "/authors", {"name": "a\u0000b"}),
    ("POST", "/authors", {"name": "   "}),
    ("POST", "/authors", {"name": "x" * 201}),
    ("POST", "/books", {"publication_year": -5000}),
    ("POST", "/books", {"author_id": 99999999999999999999}),
    ("POST", "/books", {"title": " \t "}),
    ("POST", "/books", {"category": "c\u0000"}),
    ("POST", "/books", {"price": {"amount": "1", "currency": "US\u0000"}}),
    ("PUT", "/books/{book}/stock", {"quantity": False}),
    ("PUT", "/books/{book}/stock", {"quantity": TOO_BIG}),
    ("PUT", "/books/{book}/stock", {"quantity": 1.5}),
    ("POST", "/orders", {"lines": [{"book_id": "{book}", "quantity": True}]}),
    ("POST", "/orders", {"lines": [{"book_id": TOO_BIG, "quantity": 1}]}),
    ("POST", "/orders", {"lines": [{"book_id": n, "quantity": 1} for n in range(1, 102)]}),
    ("POST", "/orders/quote", {"lines": [{"book_id": "{book}", "quantity": TOO_BIG}]}),
]


def with_book_id(value: Any, book_id: int) -> Any:
    """``value`` with every "{book}" placeholder replaced by the stocked book's id."""
    if value == "{book}":
        return book_id
    if isinstance(value, dict):
        return {key: with_book_id(item, book_id) for key, item in value.items()}
    if isinstance(value, list):
        return [with_book_id(item, book_id) for item in value]
    return value


@pytest.mark.parametrize(("method", "path", "body"), HOSTILE_REQUESTS)
async def test_out_of_bounds_input_is_a_4xx_problem_that_changes_nothing(
    client: httpx.AsyncClient,
    stocked_book: dict[str, Any],
    app_engine: AsyncEngine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    book_id = stocked_book["id"]
    if body is not None and method == "POST" and path == "/books":
        body = book_payload(stocked_book["author_id"], number=2) | body
    before = await row_counts(app_engine)

    response = await client.request(
        method, path.replace("{book}", str(book_id)), json=with_book_id(body, book_id)
    )

    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await row_counts(app_engine) == before
    stock = await client.get(f"/books/{book_id}/stock")
    assert stock.json()["quantity"] == 5


async def test_an_order_whose_total_cannot_be_stored_is_refused_by_quote_and_order_alike(
    client: httpx.AsyncClient, stocked_book: dict[str, Any], app_engine: AsyncEngine
) -> None:
    # Two books at the highest list price, a million copies each: 19,999,980,000.00.
    payload = book_payload(stocked_book["author_id"], number=2, price=stocked_book["price"])
    second = (await client.post("/books", json=payload)).json()
    for book in (stocked_book, second):
        await client.put(f"/books/{book['id']}/stock", json={"quantity": 1_000_000})
    lines = {
        "lines": [{"book_id": book["id"], "quantity": 1_000_000} for book in (stocked_book, second)]
    }
    before = await row_counts(app_engine)

    quote = await client.post("/orders/quote", json=lines)
    order = await client.post("/orders", json=lines)

    assert (quote.status_code, quote.json()["code"]) == (422, "invalid_quote")
    assert (order.status_code, order.json()["code"]) == (422, "invalid_quote")
    assert await row_counts(app_engine) == before


async def test_a_body_over_the_limit_is_a_413_problem(client: httpx.AsyncClient) -> None:
    oversized = {"name": "x" * (1024 * 1024)}

    async def streamed() -> Any:
        for _ in range(1100):
            yield b"x" * 1024

    declared = await client.post("/authors", json=oversized)
    chunked = await client.post(
        "/books/import", content=streamed(), headers={"content-type": "text/csv"}
    )

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["code"] == "request_entity_too_large"


async def test_json_that_is_not_utf8_is_the_documented_json_invalid_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/authors",
        content='{"name": "Gabriel García Márquez"}'.encode("latin-1"),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "json_invalid"


async def test_csv_rows_the_database_would_refuse_become_row_errors(
    client: httpx.AsyncClient, stocked_book: dict[str, Any]
) -> None:
    author = stocked_book["author_id"]
    rows = [
        f"{isbn13(11)},{'t' * 301},{author},10.00,USD",
        f"{isbn13(12)},{'t' * 140_000},{author},10.00,USD",
        f"{isbn13(13)},Too big an author,99999999999999999999,10.00,USD",
        f"{isbn13(15)},A NUL\x00in the title,{author},10.00,USD",
        f"{isbn13(14)},A good row,{author},10.00,USD",
    ]
    # Excel writes a byte order mark; old Macs end lines with a bare CR.
    csv_text = "\ufeff" + CSV_HEADER + "\r".join(rows) + "\r"

    response = await client.post(
        "/books/import", content=csv_text.encode(), headers={"content-type": "text/csv"}
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 1
    assert [error["row"] for error in report["errors"]] == [2, 3, 4, 5]
    assert {error["code"] for error in report["errors"]} == {"invalid_csv_row"}


async def test_first_stock_counts_of_one_book_racing_each_other_all_succeed(
    app: FastAPI, client: httpx.AsyncClient, app_engine: AsyncEngine
) -> None:
    await set_tenant_setting(app, "limits.concurrent_requests", 20)
    author = (await client.post("/authors", json={"name": "Ursula K. Le Guin"})).json()
    book = (await client.post("/books", json=book_payload(author["id"]))).json()

    responses = await asyncio.gather(
        *(client.put(f"/books/{book['id']}/stock", json={"quantity": n}) for n in range(20))
    )

    assert {response.status_code for response in responses} == {200}
    assert (await row_counts(app_engine))["Stock"] == 1


async def test_imports_of_the_same_books_in_opposite_orders_do_not_deadlock(
    client: httpx.AsyncClient,
) -> None:
    author = (await client.post("/authors", json={"name": "Ursula K. Le Guin"})).json()
    rows = [f"{isbn13(n)},Book {n},{author['id']},10.00,USD" for n in range(20, 40)]
    forward = CSV_HEADER + "\n".join(rows)
    backward = CSV_HEADER + "\n".join(reversed(rows))

    responses = await asyncio.gather(
        *(
            client.post("/books/import", content=text, headers={"content-type": "text/csv"})
            for text in (forward, backward)
        )
    )

    assert [response.status_code for response in responses] == [200, 200]
    assert sum(response.json()["imported"] for response in responses) == len(rows)


async def test_head_is_answered_like_get_without_a_body(
    client: httpx.AsyncClient, stocked_book: dict[str, Any]
) -> None:
    get = await client.get(f"/books/{stocked_book['id']}")
    head = await client.head(f"/books/{stocked_book['id']}")

    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_a_405_allows_every_method_the_path_serves(client: httpx.AsyncClient) -> None:
    response = await client.delete("/books/1/stock")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_json_is_a_415_problem(
    client: httpx.AsyncClient, app_engine: AsyncEngine, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    before = await row_counts(app_engine)

    response = await client.post("/authors", content=b'{"name": "N. K. Jemisin"}', headers=headers)

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert await row_counts(app_engine) == before


async def test_messages_count_in_words_a_reader_would_write(
    client: httpx.AsyncClient, stocked_book: dict[str, Any]
) -> None:
    await client.put(f"/books/{stocked_book['id']}/stock", json={"quantity": 0})
    order = await client.post(
        "/orders", json={"lines": [{"book_id": stocked_book["id"], "quantity": 1}]}
    )
    described = await client.get("/problems/insufficient_stock")

    assert "1 copy requested" in order.json()["detail"]
    assert "``" not in described.json()["description"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
async def test_a_csv_import_sent_as_another_type_is_a_415_that_imports_nothing(
    client: httpx.AsyncClient,
    stocked_book: dict[str, Any],
    app_engine: AsyncEngine,
    content_type: str | None,
) -> None:
    csv_text = CSV_HEADER + f"{isbn13(50)},Sent as text,{stocked_book['author_id']},10.00,USD\n"
    headers = {} if content_type is None else {"content-type": content_type}
    before = await row_counts(app_engine)

    response = await client.post("/books/import", content=csv_text.encode(), headers=headers)

    assert response.status_code == 415
    assert await row_counts(app_engine) == before


async def test_csv_numbers_get_the_apis_bounds_however_long_they_are(
    client: httpx.AsyncClient, stocked_book: dict[str, Any]
) -> None:
    author = stocked_book["author_id"]
    header = CSV_HEADER.rstrip("\n") + ",publication_year\n"
    rows = [
        f"{isbn13(60)},Digits beyond int(),{'1' * 5000},10.00,USD,",
        f"{isbn13(61)},Zeros first,{'0' * 4400}{author},10.00,USD,",
        f"{isbn13(62)},Year zero,{author},10.00,USD,0",
        f"{isbn13(63)},Year too late,{author},10.00,USD,99999",
    ]

    response = await client.post(
        "/books/import",
        content=(header + "\n".join(rows)).encode(),
        headers={"content-type": "text/csv"},
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 1  # leading zeros are still the author's id
    assert [error["row"] for error in report["errors"]] == [2, 4, 5]


async def test_a_trailing_slash_is_a_404_problem_not_a_redirect(client: httpx.AsyncClient) -> None:
    response = await client.post("/books/", json={}, headers={"host": "evil.example"})

    assert response.status_code == 404
    assert "location" not in response.headers
