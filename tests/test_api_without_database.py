"""API tests that need no database: ``app.dependency_overrides`` swaps in services on fakes.

The app's lifespan never runs here, so no engine exists; a route that still reached for the
real session would fail.
"""

from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from shelfwise.catalog.dependencies import get_book_service
from shelfwise.catalog.service import BookService
from shelfwise.identity.dependencies import authenticate
from shelfwise.identity.tokens import Principal
from shelfwise.main import create_app
from shelfwise.orders.dependencies import get_order_saga, get_order_service
from shelfwise.orders.service import OrderService
from shelfwise.platform.cache import TwoLevelCache
from shelfwise.tenancy.cache import TenantCache
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.dependencies import get_tenant_cache
from tests.catalog.fakes import InMemoryAuthorRepository, InMemoryBookRepository
from tests.factories import a_book, an_author
from tests.inventory.fakes import InMemoryStockRepository
from tests.orders.fakes import InMemoryOrderRepository
from tests.platform.fakes import FakeUnitOfWork


@pytest.fixture
async def books() -> InMemoryBookRepository:
    books = InMemoryBookRepository()
    # Without a database nothing fills in author_id from the author, so both are given.
    await books.add(a_book(author=an_author(id=1), author_id=1))
    return books


@pytest.fixture
def app() -> FastAPI:
    app = create_app()
    # Who is calling is checked against the database too; here the caller is simply given.
    app.dependency_overrides[authenticate] = signed_in_as_tenant_1
    # The lifespan makes the cache; here it is an in-process one of the test's own.
    cache = TenantCache(TwoLevelCache(l1_max_bytes=100_000, l1_ttl_seconds=60), ttl_seconds=60)
    app.dependency_overrides[get_tenant_cache] = lambda: cache
    return app


TENANT_1 = UUID(int=1)


async def signed_in_as_tenant_1() -> AsyncIterator[Principal]:
    with tenant_context(TENANT_1):
        yield Principal(user_id=1, tenant_id=TENANT_1)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


class SagaStarts:
    """Records the sagas a request starts, instead of running them."""

    def __init__(self) -> None:
        self.started: list[tuple[UUID, int]] = []

    def start(self, tenant_id: UUID, order_id: int) -> None:
        self.started.append((tenant_id, order_id))


async def test_an_order_is_placed_through_a_service_on_fakes(
    app: FastAPI, client: httpx.AsyncClient, books: InMemoryBookRepository
) -> None:
    stock = InMemoryStockRepository()
    await stock.set_quantity(1, 5)
    app.dependency_overrides[get_order_service] = lambda: OrderService(
        books, stock, InMemoryOrderRepository(), FakeUnitOfWork()
    )
    saga = SagaStarts()
    app.dependency_overrides[get_order_saga] = lambda: saga

    response = await client.post("/orders", json={"lines": [{"book_id": 1, "quantity": 2}]})

    assert response.status_code == 201, response.text
    assert response.json()["total"] == {"amount": "25.00", "currency": "USD"}
    assert await stock.quantity(1) == 3
    assert saga.started == [(TENANT_1, response.json()["id"])]
    assert not hasattr(app.state, "database")  # no engine was ever created


async def test_catalog_reads_go_to_the_overriding_service(
    app: FastAPI, client: httpx.AsyncClient, books: InMemoryBookRepository
) -> None:
    app.dependency_overrides[get_book_service] = lambda: BookService(
        books, InMemoryAuthorRepository(), FakeUnitOfWork()
    )

    found = await client.get("/books/1")
    missing = await client.get("/books/2")

    assert found.json()["author_name"] == "Ursula K. Le Guin"
    assert (missing.status_code, missing.json()["code"]) == (404, "book_not_found")
