"""Every error is an RFC 9457 problem: same shape, a request id, nothing leaked, nothing changed."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import func, select

from shelfwise.catalog.models import Book
from shelfwise.identity.dependencies import authenticate
from shelfwise.inventory.models import Stock
from shelfwise.main import create_app
from shelfwise.orders.models import Order
from shelfwise.platform.errors import DomainError
from shelfwise.platform.problems import find_problem_type
from shelfwise.platform.request_id import REQUEST_ID_HEADER
from tests.factories import Tenants, book_payload
from tests.observe import LogLines

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


@pytest.fixture
async def stateless_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose lifespan never ran: enough for errors that need no database.

    Its request ids are predictable: "fixed-id".
    """
    app = create_app(generate_request_id=lambda: "fixed-id")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


# --- The request id ---------------------------------------------------------------------------


async def test_a_request_id_is_generated_echoed_and_put_in_problems(
    stateless_client: httpx.AsyncClient,
) -> None:
    health = await stateless_client.get("/health")
    missing = await stateless_client.get("/nowhere")

    assert health.headers[REQUEST_ID_HEADER] == "fixed-id"
    assert missing.headers[REQUEST_ID_HEADER] == "fixed-id"
    assert missing.json()["request_id"] == "fixed-id"


async def test_a_sane_incoming_request_id_is_kept(stateless_client: httpx.AsyncClient) -> None:
    response = await stateless_client.get("/nowhere", headers={REQUEST_ID_HEADER: "abc-123.X_y"})

    assert response.headers[REQUEST_ID_HEADER] == "abc-123.X_y"
    assert response.json()["request_id"] == "abc-123.X_y"


@pytest.mark.parametrize("incoming", ["a" * 65, "has space", "semi;colon", "<script>", ""])
async def test_an_unsafe_incoming_request_id_is_replaced(
    stateless_client: httpx.AsyncClient, incoming: str
) -> None:
    response = await stateless_client.get("/health", headers={REQUEST_ID_HEADER: incoming})

    assert response.headers[REQUEST_ID_HEADER] == "fixed-id"


async def test_the_default_request_id_is_32_hex_digits() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = (await client.get("/health")).headers[REQUEST_ID_HEADER]
        second = (await client.get("/health")).headers[REQUEST_ID_HEADER]

    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second


# --- Errors raised by the web framework -------------------------------------------------------


async def test_an_unknown_route_is_a_404_problem(stateless_client: httpx.AsyncClient) -> None:
    response = await stateless_client.get("/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "Nothing is served at /nowhere.",
        "instance": "/nowhere",
        "code": "not_found",
        "request_id": "fixed-id",
    }


async def test_a_wrong_method_is_a_405_problem_that_keeps_the_allow_header(
    stateless_client: httpx.AsyncClient,
) -> None:
    response = await stateless_client.delete("/health")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["code"] == "method_not_allowed"
    assert response.json()["detail"] == "DELETE is not allowed on /health."


# --- Validation --------------------------------------------------------------------------------


async def test_validation_failures_list_every_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/books",
        json={"isbn": "0-306-40615-2", "author_id": "one", "price": {"amount": "abc"}},
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem.keys() == PROBLEM_KEYS | {"errors"}
    assert (problem["code"], problem["type"]) == (
        "validation_failed",
        "/problems/validation_failed",
    )
    assert problem["instance"] == "/books"
    assert [(error["field"], error["code"]) for error in problem["errors"]] == [
        ("body.title", "missing"),
        ("body.author_id", "int_parsing"),
        ("body.price.amount", "decimal_parsing"),
        ("body.price.currency", "missing"),
    ]
    assert all(error["message"] for error in problem["errors"])


async def test_query_parameters_are_validated_in_the_same_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/books", params={"limit": 0})

    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("query.limit", "greater_than_equal")


async def test_malformed_json_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/authors", content=b'{"name": ', headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"] == "The request body is not valid JSON."
    (error,) = problem["errors"]
    assert (error["field"], error["code"]) == ("body", "json_invalid")
    assert "at character 9" in error["message"]


# --- Unexpected errors ------------------------------------------------------------------------


async def test_an_unexpected_error_is_a_500_that_leaks_nothing_and_is_logged(
    app: FastAPI, client: httpx.AsyncClient, log_lines: LogLines, tenants: Tenants
) -> None:
    async def crash() -> None:
        raise RuntimeError("password=hunter2 in /srv/shelfwise/secret.py")

    app.add_api_route("/test/crash", crash, methods=["GET"], dependencies=[Depends(authenticate)])

    response = await client.get("/test/crash")

    problem = response.json()
    assert response.status_code == 500
    assert problem.keys() == PROBLEM_KEYS
    assert (problem["code"], problem["title"]) == ("internal_error", "Internal error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert response.headers[REQUEST_ID_HEADER] == problem["request_id"]
    # The log has what the client must not see, under the request's id and its tenant.
    (line,) = log_lines.where(level="error")
    assert line["request_id"] == problem["request_id"]
    assert line["tenant_id"] == str(tenants.a.id)
    assert "RuntimeError: password=hunter2" in line["exception"]


# --- Problem types -----------------------------------------------------------------------------


async def test_a_problem_type_is_described_at_its_uri(stateless_client: httpx.AsyncClient) -> None:
    response = await stateless_client.get("/problems/book_not_found")

    assert response.status_code == 200
    assert response.json() == {
        "type": "/problems/book_not_found",
        "code": "book_not_found",
        "title": "Book not found",
        "status": 404,
        "description": "No book has the requested id.",
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [("validation_failed", 422), ("internal_error", 500), ("method_not_allowed", 405)],
)
async def test_platform_and_http_problem_types_are_described_too(
    stateless_client: httpx.AsyncClient, code: str, status: int
) -> None:
    described = (await stateless_client.get(f"/problems/{code}")).json()

    assert (described["code"], described["status"]) == (code, status)
    assert described["description"]


@pytest.mark.parametrize("code", ["no_such_problem", "ok", "domain"])
async def test_an_unknown_problem_type_is_a_404_problem(
    stateless_client: httpx.AsyncClient, code: str
) -> None:
    response = await stateless_client.get(f"/problems/{code}")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_problem_type"


def all_domain_errors() -> list[type[DomainError]]:
    pending, found = [DomainError], []
    while pending:
        error = pending.pop()
        found.append(error)
        pending.extend(error.__subclasses__())
    return found


def test_every_domain_error_has_its_own_code_title_and_description() -> None:
    errors = all_domain_errors()

    for error in errors:
        assert "code" in error.__dict__, f"{error.__name__} has no code of its own"
        assert "title" in error.__dict__, f"{error.__name__} has no title of its own"
        assert error.__doc__, f"{error.__name__} has no docstring to describe it"
        problem_type = find_problem_type(error.code)
        assert problem_type is not None
        assert problem_type.title == error.title
    codes = [error.code for error in errors]
    assert len(codes) == len(set(codes))


# --- OpenAPI ------------------------------------------------------------------------------------


@pytest.fixture
def openapi() -> dict[str, Any]:
    return create_app().openapi()


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/books", "post", {"401", "403", "404", "409", "413", "415", "422", "429", "500", "503"}),
        (
            "/books/{book_id}",
            "get",
            {"401", "403", "404", "413", "415", "422", "429", "500", "503"},
        ),
        (
            "/orders",
            "post",
            {"400", "401", "403", "404", "409", "413", "415", "422", "429", "500", "503"},
        ),
        ("/auth/token", "post", {"401", "403", "413", "415", "422", "500", "503"}),
        ("/health", "get", {"500"}),
        ("/health/ready", "get", {"500", "503"}),
    ],
)
def test_error_responses_are_documented_as_problems(
    openapi: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    responses = openapi["paths"][path][method]["responses"]
    errors = {status: response for status, response in responses.items() if status >= "400"}

    assert errors.keys() == statuses
    for response in errors.values():
        assert response["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }


def test_the_documented_codes_are_those_the_route_can_raise(openapi: dict[str, Any]) -> None:
    responses = openapi["paths"]["/books"]["post"]["responses"]

    assert responses["404"]["description"] == "`author_not_found`: Author not found"
    assert responses["409"]["description"] == "`duplicate_isbn`: Duplicate ISBN"
    for code in ("invalid_isbn", "price_out_of_range", "invalid_currency", "validation_failed"):
        assert f"`{code}`" in responses["422"]["description"]


def test_the_problem_schema_replaces_fastapis_validation_error(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]

    assert set(schemas["Problem"]["required"]) == PROBLEM_KEYS - {"request_id"}
    assert schemas["Problem"]["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/FieldError"
    }
    assert "FieldError" in schemas
    assert "HTTPValidationError" not in schemas


# --- Bad input changes nothing ----------------------------------------------------------------


@pytest.fixture
async def stocked_book(client: httpx.AsyncClient) -> int:
    """One book, five copies on hand."""
    author = await client.post("/authors", json={"name": "Ursula K. Le Guin"})
    book = await client.post("/books", json=book_payload(author.json()["id"]))
    await client.put(f"/books/{book.json()['id']}/stock", json={"quantity": 5})
    book_id: int = book.json()["id"]
    return book_id


async def database_state(app: FastAPI) -> tuple[int, int, list[int]]:
    """Books, orders and stock levels, read directly from the database."""
    async with app.state.database.session_factory() as session:
        books = await session.scalar(select(func.count()).select_from(Book))
        orders = await session.scalar(select(func.count()).select_from(Order))
        stock = (await session.scalars(select(Stock.quantity).order_by(Stock.book_id))).all()
        return books or 0, orders or 0, list(stock)


def new_book(**overrides: Any) -> dict[str, Any]:
    """A second book by the stocked book's author, with ``overrides``."""
    return book_payload(author_id=1, number=2, **overrides)


BAD_REQUESTS = [
    pytest.param("/orders", {"lines": [{"book_id": 99, "quantity": 1}]}, 404, "book_not_found",
                 id="unknown book"),
    pytest.param("/orders", {"lines": [{"book_id": 1, "quantity": 0}]}, 422, "invalid_quantity",
                 id="zero quantity"),
    pytest.param("/orders", {"lines": [{"book_id": 1, "quantity": 6}]}, 409, "insufficient_stock",
                 id="insufficient stock"),
    pytest.param("/books", new_book(isbn="978-0-441-47812-6"), 422, "invalid_isbn",
                 id="malformed isbn"),
    pytest.param("/books", new_book(price={"amount": "abc", "currency": "USD"}), 422,
                 "validation_failed", id="price not a number"),
    pytest.param("/books", new_book(price={"amount": "-5.00", "currency": "USD"}), 422,
                 "price_out_of_range", id="negative price"),
    pytest.param("/books", new_book(price={"amount": "1234567890.123", "currency": "USD"}), 422,
                 "validation_failed", id="price with too many digits"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "code"), BAD_REQUESTS)
async def test_bad_input_gets_a_clear_problem_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    stocked_book: int,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = await database_state(app)

    response = await client.post(path, json=body)

    problem = response.json()
    assert (response.status_code, problem["status"], problem["code"]) == (status, status, code)
    assert problem["detail"]
    assert await database_state(app) == before == (1, 0, [5])


@pytest.mark.parametrize("path", ["/orders", "/books"])
async def test_malformed_json_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, stocked_book: int, path: str
) -> None:
    before = await database_state(app)

    response = await client.post(
        path, content=b'{"lines": [', headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "json_invalid"
    assert await database_state(app) == before
