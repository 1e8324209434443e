"""End-to-end: the HTTP API over a real SQLite file, with the app's own lifespan."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from shelfwise.catalog.models import Book
from tests.factories import book_payload


async def count_books_in_database(app: FastAPI) -> int:
    """Ask the database directly, bypassing the API under test."""
    async with app.state.database.session_factory() as session:
        count: int = await session.scalar(select(func.count()).select_from(Book))
        return count


async def create_author(client: httpx.AsyncClient, name: str = "Ursula K. Le Guin") -> int:
    response = await client.post("/authors", json={"name": name})
    assert response.status_code == 201, response.text
    author_id: int = response.json()["id"]
    return author_id


async def create_book(client: httpx.AsyncClient, author_id: int, **overrides: Any) -> int:
    response = await client.post("/books", json=book_payload(author_id, **overrides))
    assert response.status_code == 201, response.text
    book_id: int = response.json()["id"]
    return book_id


async def two_stocked_books(client: httpx.AsyncClient) -> tuple[int, int]:
    """Two books, 12.50 and 8.99 USD, 20 copies each in stock: the ids of both."""
    author_id = await create_author(client)
    earthsea = await create_book(client, author_id, isbn="9780306406157")
    kindred = await create_book(
        client,
        author_id,
        isbn="9780807083697",
        title="Kindred",
        price={"amount": "8.99", "currency": "USD"},
    )
    for book_id in (earthsea, kindred):
        await client.put(f"/books/{book_id}/stock", json={"quantity": 20})
    return earthsea, kindred


async def test_authors_can_be_created_fetched_and_listed(client: httpx.AsyncClient) -> None:
    for name in ("Ursula K. Le Guin", "Octavia E. Butler", "N. K. Jemisin"):
        await create_author(client, name)

    one = await client.get("/authors/2")
    page = await client.get("/authors", params={"limit": 2, "offset": 1})

    assert one.json() == {"id": 2, "name": "Octavia E. Butler"}
    assert page.json() == {
        "items": [{"id": 2, "name": "Octavia E. Butler"}, {"id": 3, "name": "N. K. Jemisin"}],
        "total": 3,
        "limit": 2,
        "offset": 1,
    }


async def test_an_unknown_author_is_404_with_a_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/authors/99")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/author_not_found",
        "title": "Author not found",
        "status": 404,
        "detail": "Author 99 does not exist.",
        "instance": "/authors/99",
        "code": "author_not_found",
        "request_id": response.headers["X-Request-ID"],
    }


async def test_a_created_book_is_returned_in_canonical_form(client: httpx.AsyncClient) -> None:
    author_id = await create_author(client)

    created = await client.post(
        "/books",
        json=book_payload(
            author_id,
            isbn="0-306-40615-2",
            title="A Wizard of Earthsea",
            category="Fantasy",
            publication_year=1968,
        ),
    )
    fetched = await client.get(f"/books/{created.json()['id']}")

    expected = {
        "id": 1,
        "isbn": "9780306406157",
        "title": "A Wizard of Earthsea",
        "author_id": author_id,
        "author_name": "Ursula K. Le Guin",
        "price": {"amount": "12.50", "currency": "USD"},
        "category": "Fantasy",
        "publication_year": 1968,
    }
    assert created.status_code == 201
    assert created.json() == expected
    assert fetched.json() == expected


async def test_books_are_listed_a_page_at_a_time(client: httpx.AsyncClient) -> None:
    author_id = await create_author(client)
    for isbn, title in [
        ("9780306406157", "One"),
        ("9780441478125", "Two"),
        ("9780061054884", "Three"),
    ]:
        await create_book(client, author_id, isbn=isbn, title=title)

    body = (await client.get("/books", params={"limit": 2, "offset": 1})).json()

    assert [book["title"] for book in body["items"]] == ["Two", "Three"]
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 1)


async def test_q_searches_titles_and_author_names(client: httpx.AsyncClient) -> None:
    le_guin = await create_author(client, "Ursula K. Le Guin")
    butler = await create_author(client, "Octavia E. Butler")
    await create_book(client, le_guin, isbn="9780441478125", title="The Left Hand of Darkness")
    await create_book(client, butler, isbn="9780807083697", title="Kindred")

    by_title = (await client.get("/books", params={"q": "left hand"})).json()
    by_author = (await client.get("/books", params={"q": "BUTLER"})).json()

    assert [book["title"] for book in by_title["items"]] == ["The Left Hand of Darkness"]
    assert [book["title"] for book in by_author["items"]] == ["Kindred"]
    assert by_author["total"] == 1


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
async def test_out_of_range_paging_is_rejected(
    client: httpx.AsyncClient, params: dict[str, int]
) -> None:
    assert (await client.get("/books", params=params)).status_code == 422


async def test_an_unknown_book_is_404_with_a_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/books/999")

    assert response.status_code == 404
    assert response.json()["code"] == "book_not_found"
    assert response.json()["detail"] == "Book 999 does not exist."


async def test_a_duplicate_isbn_is_409_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    author_id = await create_author(client)
    await create_book(client, author_id, isbn="0-306-40615-2")

    response = await client.post(
        "/books", json=book_payload(author_id, isbn="978-0-306-40615-7", title="Copy")
    )

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_isbn"
    assert await count_books_in_database(app) == 1


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"isbn": "0-306-40615-3"}, "invalid_isbn"),
        ({"price": {"amount": "0.00", "currency": "USD"}}, "price_out_of_range"),
        ({"price": {"amount": "12.50", "currency": "usd"}}, "invalid_currency"),
    ],
)
async def test_invalid_books_are_422_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, overrides: dict[str, Any], code: str
) -> None:
    author_id = await create_author(client)

    response = await client.post("/books", json=book_payload(author_id, **overrides))

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert await count_books_in_database(app) == 0


async def test_a_book_by_an_unknown_author_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/books", json=book_payload(author_id=42))

    assert response.status_code == 404
    assert response.json()["code"] == "author_not_found"


async def test_stock_can_be_set_and_read(client: httpx.AsyncClient) -> None:
    book_id = await create_book(client, await create_author(client))

    before = await client.get(f"/books/{book_id}/stock")
    put = await client.put(f"/books/{book_id}/stock", json={"quantity": 7})
    after = await client.get(f"/books/{book_id}/stock")

    assert before.json() == {"book_id": book_id, "quantity": 0}
    assert put.status_code == 200
    assert put.json() == after.json() == {"book_id": book_id, "quantity": 7}


async def test_a_rejected_stock_update_changes_nothing(client: httpx.AsyncClient) -> None:
    book_id = await create_book(client, await create_author(client))
    await client.put(f"/books/{book_id}/stock", json={"quantity": 7})

    response = await client.put(f"/books/{book_id}/stock", json={"quantity": -1})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_quantity"
    assert (await client.get(f"/books/{book_id}/stock")).json()["quantity"] == 7


async def test_stock_of_an_unknown_book_is_404(client: httpx.AsyncClient) -> None:
    response = await client.put("/books/999/stock", json={"quantity": 1})

    assert response.status_code == 404
    assert response.json()["code"] == "book_not_found"


async def test_a_bulk_quote_gets_the_discount(client: httpx.AsyncClient) -> None:
    earthsea, kindred = await two_stocked_books(client)

    response = await client.post(
        "/orders/quote",
        json={
            "lines": [
                {"book_id": earthsea, "quantity": 6},
                {"book_id": kindred, "quantity": 4},
            ]
        },
    )

    assert response.status_code == 200
    quote = response.json()
    assert quote["lines"][1] == {
        "book_id": kindred,
        "title": "Kindred",
        "quantity": 4,
        "unit_price": {"amount": "8.99", "currency": "USD"},
        "line_total": {"amount": "35.96", "currency": "USD"},
    }
    assert quote["subtotal"] == {"amount": "110.96", "currency": "USD"}
    assert quote["discount_percent"] == "5"
    assert quote["discount"] == {"amount": "5.55", "currency": "USD"}
    assert quote["total"] == {"amount": "105.41", "currency": "USD"}


async def test_a_quote_beyond_the_stock_is_409(client: httpx.AsyncClient) -> None:
    book_id = await create_book(client, await create_author(client))
    await client.put(f"/books/{book_id}/stock", json={"quantity": 3})

    response = await client.post(
        "/orders/quote", json={"lines": [{"book_id": book_id, "quantity": 4}]}
    )

    assert response.status_code == 409
    problem = response.json()
    assert (problem["status"], problem["code"]) == (409, "insufficient_stock")
    assert problem["detail"] == f"Book {book_id}: 4 copies requested but only 3 available."


async def stock_of(client: httpx.AsyncClient, book_id: int) -> int:
    quantity: int = (await client.get(f"/books/{book_id}/stock")).json()["quantity"]
    return quantity


async def test_an_order_is_placed_stored_and_takes_the_stock(client: httpx.AsyncClient) -> None:
    earthsea, kindred = await two_stocked_books(client)

    placed = await client.post(
        "/orders",
        json={"lines": [{"book_id": earthsea, "quantity": 6}, {"book_id": kindred, "quantity": 4}]},
    )
    fetched = await client.get(f"/orders/{placed.json()['id']}")

    expected = {
        "id": 1,
        "status": "placed",
        "items": [
            {
                "book_id": earthsea,
                "quantity": 6,
                "unit_price": {"amount": "12.50", "currency": "USD"},
                "line_total": {"amount": "75.00", "currency": "USD"},
            },
            {
                "book_id": kindred,
                "quantity": 4,
                "unit_price": {"amount": "8.99", "currency": "USD"},
                "line_total": {"amount": "35.96", "currency": "USD"},
            },
        ],
        "discount_percent": "5.00",
        "total": {"amount": "105.41", "currency": "USD"},
    }
    assert placed.status_code == 201
    assert placed.json() == expected
    assert fetched.json() == expected
    assert (await stock_of(client, earthsea), await stock_of(client, kindred)) == (14, 16)


async def test_an_order_beyond_the_stock_is_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    author_id = await create_author(client)
    earthsea = await create_book(client, author_id, isbn="9780306406157")
    kindred = await create_book(client, author_id, isbn="9780807083697", title="Kindred")
    await client.put(f"/books/{earthsea}/stock", json={"quantity": 5})
    await client.put(f"/books/{kindred}/stock", json={"quantity": 1})

    response = await client.post(
        "/orders",
        json={"lines": [{"book_id": earthsea, "quantity": 5}, {"book_id": kindred, "quantity": 2}]},
    )

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert (await stock_of(client, earthsea), await stock_of(client, kindred)) == (5, 1)
    assert (await client.get("/orders/1")).status_code == 404


async def test_an_unknown_order_is_404_with_a_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/7")

    assert response.status_code == 404
    assert response.json()["code"] == "order_not_found"
    assert response.json()["detail"] == "Order 7 does not exist."


async def test_books_are_imported_from_csv_with_a_report_of_rejected_rows(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    author_id = await create_author(client)
    csv_text = (
        "isbn,title,author_id,price_amount,price_currency\n"
        f"0-306-40615-2,A Wizard of Earthsea,{author_id},12.50,USD\n"
        f"0-306-40615-3,Bad Checksum,{author_id},9.99,USD\n"
        f"9780441478125,The Left Hand of Darkness,{author_id},9.99,USD\n"
    )

    response = await client.post(
        "/books/import", content=csv_text, headers={"content-type": "text/csv"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "imported": 2,
        "rejected": 1,
        "errors": [
            {
                "row": 3,
                "code": "invalid_isbn",
                "detail": "The check digit of ISBN-10 '0-306-40615-3' is wrong.",
            }
        ],
    }
    assert await count_books_in_database(app) == 2


async def test_a_csv_without_the_required_columns_imports_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/books/import",
        content="isbn,title\n9780441478125,Title\n",
        headers={"content-type": "text/csv"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_csv"
    assert await count_books_in_database(app) == 0


async def test_stock_levels_of_several_books_in_one_request(client: httpx.AsyncClient) -> None:
    author_id = await create_author(client)
    earthsea = await create_book(client, author_id, isbn="9780306406157")
    kindred = await create_book(client, author_id, isbn="9780807083697", title="Kindred")
    await client.put(f"/books/{earthsea}/stock", json={"quantity": 7})

    response = await client.get("/stock", params={"book_id": [kindred, earthsea]})

    assert response.json() == [
        {"book_id": kindred, "quantity": 0},
        {"book_id": earthsea, "quantity": 7},
    ]


async def test_a_stock_report_needs_at_least_one_book(client: httpx.AsyncClient) -> None:
    response = await client.get("/stock")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.book_id"
