"""Tenant B can neither see nor change tenant A's data, through any route.

The routes come from the app's own OpenAPI document, and every one must have a case below: a
route added in a later part fails ``test_every_route_has_an_isolation_case`` until someone
says what B may do with it. Each case runs behind each wall: the ORM filter on SQLite, both
walls on PostgreSQL, and PostgreSQL's row-level security alone (the ORM filter switched off),
so either wall is shown to hold by itself.

The rule for a route that takes ids: B's answer with A's ids is exactly B's answer with ids
that exist nowhere. A 404 for A's book is the 404 for a book that never existed, so a probe
learns nothing. And after every request, A's data reads as it did before.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from shelfwise.main import create_app
from shelfwise.platform.db import session_class
from shelfwise.tenancy.orm_filter import filter_by_tenant
from tests.databases import empty_database
from tests.factories import book_payload, isbn13

# Routes anyone may call: they read or write no tenant's data.
PUBLIC_ROUTES = {"GET /health", "GET /health/ready", "GET /problems/{code}", "POST /auth/token"}
GHOST_ID = 999_999  # an id no tenant has

Ids = dict[str, int]
Request = Callable[[Ids], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    """What B sends (built from a set of ids), and what kind of answer it must get."""

    method: str
    request: Request
    # "same as ghost": the answer equals the answer for ids that exist nowhere.
    # "empty list": a page with no items. "own tenant": a write that lands in B's tenant.
    expect: str = "same as ghost"
    extra: dict[str, Any] = field(default_factory=dict)


def path(template: str) -> Request:
    return lambda ids: (template.format(**ids), {})


def body(template: str, make: Callable[[Ids], Any], kind: str = "json") -> Request:
    return lambda ids: (template.format(**ids), {kind: make(ids)})


def csv_of_a_book_by(ids: Ids) -> dict[str, Any]:
    row = f"{isbn13(1)},Another Wizard,{ids['author_id']},12.50,USD\n"
    return {
        "content": "isbn,title,author_id,price_amount,price_currency\n" + row,
        "headers": {"content-type": "text/csv"},
    }


def one_copy_of(ids: Ids) -> dict[str, Any]:
    return {"lines": [{"book_id": ids["book_id"], "quantity": 1}]}


CASES: dict[str, Case] = {
    "GET /authors": Case("GET", path("/authors"), expect="empty list"),
    "POST /authors": Case("POST", body("/authors", lambda _: {"name": "B's author"}), "own tenant"),
    "GET /authors/{author_id}": Case("GET", path("/authors/{author_id}")),
    "GET /books": Case("GET", path("/books"), expect="empty list"),
    # B cannot file a book under A's author: the author is "not found".
    "POST /books": Case("POST", body("/books", lambda ids: book_payload(ids["author_id"]))),
    "POST /books/import": Case("POST", lambda ids: ("/books/import", csv_of_a_book_by(ids))),
    "GET /books/{book_id}": Case("GET", path("/books/{book_id}")),
    "GET /books/{book_id}/stock": Case("GET", path("/books/{book_id}/stock")),
    "PUT /books/{book_id}/stock": Case(
        "PUT", body("/books/{book_id}/stock", lambda _: {"quantity": 1000})
    ),
    "GET /stock": Case("GET", lambda ids: ("/stock", {"params": {"book_id": ids["book_id"]}})),
    "POST /orders/quote": Case("POST", body("/orders/quote", one_copy_of)),
    "POST /orders": Case("POST", body("/orders", one_copy_of)),
    "GET /orders/{order_id}": Case("GET", path("/orders/{order_id}")),
}
GHOST_IDS = {"author_id": GHOST_ID, "book_id": GHOST_ID, "order_id": GHOST_ID}


def test_every_route_has_an_isolation_case() -> None:
    routes = {
        f"{method.upper()} {route}"
        for route, operations in create_app().openapi()["paths"].items()
        for method in operations
    }
    assert routes - PUBLIC_ROUTES == set(CASES), "add a case for each new tenant route"


# --- The walls ---------------------------------------------------------------------------------

WALLS = [
    "sqlite, ORM filter",
    pytest.param("postgresql, ORM filter and RLS", marks=pytest.mark.postgresql),
    pytest.param("postgresql, RLS alone", marks=pytest.mark.postgresql),
]


@pytest.fixture(params=WALLS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Overrides conftest's: one database per wall setup, named by ``request.param``."""
    backend = request.param.partition(",")[0]
    async with empty_database(backend, request, tmp_path) as url:
        yield url


@pytest.fixture
def walled_app(app: FastAPI, request: pytest.FixtureRequest) -> FastAPI:
    """The app, with the ORM filter taken off its sessions for "RLS alone"."""
    if request.node.callspec.params["database_url"].endswith("RLS alone"):
        sessions = session_class(app.state.database.session_factory)
        event.remove(sessions, "do_orm_execute", filter_by_tenant)
    return app


# --- The cases ----------------------------------------------------------------------------------


async def a_resources(client: httpx.AsyncClient) -> Ids:
    """Tenant A's author, book (5 in stock, then 1 ordered) and order."""
    author = await client.post("/authors", json={"name": "A's author"})
    book = await client.post("/books", json=book_payload(author.json()["id"]))
    book_id = book.json()["id"]
    await client.put(f"/books/{book_id}/stock", json={"quantity": 5})
    order = await client.post("/orders", json=one_copy_of({"book_id": book_id}))
    assert order.status_code == 201, order.text
    return {"author_id": author.json()["id"], "book_id": book_id, "order_id": order.json()["id"]}


async def everything_a_sees(client: httpx.AsyncClient, ids: Ids) -> list[Any]:
    reads = [
        "/authors",
        "/books",
        "/authors/{author_id}",
        "/books/{book_id}",
        "/books/{book_id}/stock",
        "/orders/{order_id}",
    ]
    return [(await client.get(read.format(**ids))).json() for read in reads]


def comparable(response: httpx.Response, ids: Ids) -> tuple[int, Any]:
    """Status and body, without what differs on every request, and with the ids the request
    named masked (in ``*_id`` fields and in messages), so two answers compare by shape."""
    named = {str(each) for each in ids.values()}

    def mask(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: mask(v, k) for k, v in value.items() if k not in {"request_id", "instance"}}
        if isinstance(value, list):
            return [mask(each) for each in value]
        if key.endswith("id") and str(value) in named:
            return "<id>"
        if key == "detail":
            return " ".join("<id>" if word.strip(".") in named else word for word in value.split())
        return value

    return response.status_code, mask(response.json())


async def send(client: httpx.AsyncClient, case: Case, ids: Ids) -> httpx.Response:
    url, options = case.request(ids)
    return await client.request(case.method, url, **options)


@pytest.mark.parametrize("route", sorted(CASES))
async def test_tenant_b_cannot_reach_tenant_a_through(
    route: str,
    walled_app: FastAPI,
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
) -> None:
    case = CASES[route]
    ids = await a_resources(client)
    before = await everything_a_sees(client, ids)

    with_a_ids = await send(other_client, case, ids)

    if case.expect == "same as ghost":
        with_ghost_ids = await send(other_client, case, GHOST_IDS)
        assert comparable(with_a_ids, ids) == comparable(with_ghost_ids, GHOST_IDS)
        assert with_a_ids.status_code != 500
    elif case.expect == "empty list":
        assert with_a_ids.status_code == 200
        assert with_a_ids.json()["items"] == [] and with_a_ids.json()["total"] == 0
    else:  # own tenant: B's write succeeds, in B's tenant, invisible to A
        assert with_a_ids.status_code == 201, with_a_ids.text
        created = with_a_ids.json()["id"]
        assert (await other_client.get(f"/authors/{created}")).status_code == 200
        assert (await client.get(f"/authors/{created}")).status_code == 404
    assert await everything_a_sees(client, ids) == before
