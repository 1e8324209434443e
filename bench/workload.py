"""The data a run works on and the HTTP calls it makes, through the app's own API only, so
the same code seeds and loads every part."""

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.client import Connection
from bench.load import Call

# The most the API accepts, far more copies than a run orders (a few thousand per book), so no
# order fails for want of stock.
STOCK = 1_000_000
LINES_PER_ORDER = 2
COPIES_PER_LINE = 1
# Seeding requests in flight at once: quick, without measuring anything.
SEED_CONCURRENCY = 8


@dataclass
class Tenant:
    """One tenant's credentials and books. Before part 9 there is one, with no credentials."""

    slug: str
    headers: dict[str, str] = field(default_factory=dict)
    book_ids: list[int] = field(default_factory=list)
    # The tenant's id in the database (part 9 on), for the raw asyncpg order.
    database_id: Any = None


def isbn13(number: int) -> str:
    """A valid ISBN-13 for ``number``: 978, nine digits, check digit."""
    digits = f"978{number:09d}"
    total = sum(int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(digits))
    return digits + str(-total % 10)


async def seed(client: httpx.AsyncClient, tenant: Tenant, first_number: int, books: int) -> None:
    """Give ``tenant`` an author and ``books`` books with plenty of stock, through the API.

    ``first_number`` keeps ISBNs distinct across tenants, which a catalog shared by all
    tenants (before part 9) requires.
    """
    author = await _expect(
        client.post("/authors", json={"name": f"Author of {tenant.slug}"}, headers=tenant.headers)
    )
    limit = asyncio.Semaphore(SEED_CONCURRENCY)

    async def add_book(number: int) -> int:
        async with limit:
            book = await _expect(
                client.post(
                    "/books",
                    json={
                        "isbn": isbn13(first_number + number),
                        "title": f"Book {number} of {tenant.slug}",
                        "author_id": author["id"],
                        "price": {"amount": f"{10 + number % 20}.50", "currency": "USD"},
                    },
                    headers=tenant.headers,
                )
            )
            book_id: int = book["id"]
            await _expect(
                client.put(
                    f"/books/{book_id}/stock", json={"quantity": STOCK}, headers=tenant.headers
                )
            )
            return book_id

    tenant.book_ids = list(await asyncio.gather(*(add_book(n) for n in range(books))))


async def _expect(request: Any) -> Any:
    response: httpx.Response = await request
    if not response.is_success:
        raise RuntimeError(
            f"seeding failed: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text}"
        )
    return response.json()


class Workload:
    """Which tenant and books each worker uses. Worker N always acts for the same tenant and
    draws its books from its own seeded generator, so every scenario, app or anchor, gets the
    same mix of tenants, books and row-lock contention."""

    def __init__(self, tenants: Sequence[Tenant], concurrency: int) -> None:
        self.tenants = tenants
        self._random = [random.Random(worker) for worker in range(concurrency)]

    def tenant(self, worker: int) -> Tenant:
        return self.tenants[worker % len(self.tenants)]

    def book(self, worker: int) -> int:
        return self._random[worker].choice(self.tenant(worker).book_ids)

    def order_books(self, worker: int) -> list[int]:
        return self._random[worker].sample(self.tenant(worker).book_ids, LINES_PER_ORDER)


class HttpCalls:
    """The requests the run measures through the server, one keep-alive connection per worker."""

    def __init__(self, host: str, port: int, workload: Workload, concurrency: int) -> None:
        self._workload = workload
        self._connections = [Connection(host, port) for _ in range(concurrency)]

    def by_scenario(self) -> dict[str, Call]:
        return {
            "GET /health": self.health,
            "GET /problems/{code}": self.problem_type,
            "GET /books/{id}": self.read_book,
            "POST /orders": self.place_order,
        }

    async def health(self, worker: int) -> str | None:
        return _failure(await self._connections[worker].request("GET", "/health", {}))

    async def problem_type(self, worker: int) -> str | None:
        path = "/problems/book_not_found"
        return _failure(await self._connections[worker].request("GET", path, {}))

    async def read_book(self, worker: int) -> str | None:
        path = f"/books/{self._workload.book(worker)}"
        headers = self._workload.tenant(worker).headers
        return _failure(await self._connections[worker].request("GET", path, headers))

    async def place_order(self, worker: int) -> str | None:
        lines = [
            {"book_id": book_id, "quantity": COPIES_PER_LINE}
            for book_id in self._workload.order_books(worker)
        ]
        # A new key per order, as a client sends (part 16 stores it with the order; earlier
        # parts ignore the header).
        headers = self._workload.tenant(worker).headers | {"Idempotency-Key": uuid.uuid4().hex}
        status = await self._connections[worker].request(
            "POST", "/orders", headers, {"lines": lines}
        )
        return _failure(status)

    def close(self) -> None:
        for connection in self._connections:
            connection.close()


def _failure(status: int) -> str | None:
    return None if 200 <= status < 300 else f"HTTP {status}"
