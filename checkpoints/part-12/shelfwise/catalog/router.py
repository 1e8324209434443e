"""HTTP endpoints of the catalog: translate JSON to service calls and back, nothing more."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from shelfwise.catalog.dependencies import AuthorServiceDep, BookServiceDep
from shelfwise.catalog.errors import (
    AuthorNotFoundError,
    BookNotFoundError,
    DuplicateIsbnError,
    InvalidCsvError,
    InvalidIsbnError,
    PriceOutOfRangeError,
)
from shelfwise.catalog.importer import import_books_csv
from shelfwise.catalog.schemas import (
    AuthorCreate,
    AuthorRead,
    BookCreate,
    BookRead,
    ImportReportRead,
)
from shelfwise.catalog.service import NewBook
from shelfwise.platform.money import InvalidCurrencyError
from shelfwise.platform.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidPageError
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.schemas import MAX_INT, NO_NUL, Id, PageModel, WholeNumber

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE), WholeNumber]
Offset = Annotated[int, Query(ge=0, le=MAX_INT), WholeNumber]
SearchText = Annotated[
    str | None, Query(max_length=200, pattern=NO_NUL, description="Match title or author name")
]


async def create_author(body: AuthorCreate, authors: AuthorServiceDep) -> AuthorRead:
    """Add an author."""
    return AuthorRead.from_author(await authors.create_author(body.name))


async def list_authors(
    authors: AuthorServiceDep, limit: Limit = DEFAULT_PAGE_SIZE, offset: Offset = 0
) -> PageModel[AuthorRead]:
    """List authors in id order, one page at a time."""
    page = await authors.list_authors(limit=limit, offset=offset)
    return PageModel[AuthorRead].from_page(page, AuthorRead.from_author)


async def get_author(author_id: Id, authors: AuthorServiceDep) -> AuthorRead:
    """Return one author."""
    return AuthorRead.from_author(await authors.get_author(author_id))


async def create_book(body: BookCreate, books: BookServiceDep) -> BookRead:
    """Add a book to the catalog."""
    new_book = NewBook(
        isbn=body.isbn,
        title=body.title,
        author_id=body.author_id,
        price_amount=body.price.amount,
        price_currency=body.price.currency,
        category=body.category,
        publication_year=body.publication_year,
    )
    return BookRead.from_book(await books.create_book(new_book))


async def import_books(
    csv_text: Annotated[str, Body(media_type="text/csv", min_length=1)], books: BookServiceDep
) -> ImportReportRead:
    """Add books from a CSV file; rows that break a rule are reported, the others imported."""
    return ImportReportRead.from_report(await import_books_csv(csv_text, books))


async def list_books(
    books: BookServiceDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
    q: SearchText = None,
) -> PageModel[BookRead]:
    """List books in id order, or only those matching ``q``, one page at a time."""
    if q is None:
        page = await books.list_books(limit=limit, offset=offset)
    else:
        page = await books.search_books(q, limit=limit, offset=offset)
    return PageModel[BookRead].from_page(page, BookRead.from_book)


async def get_book(book_id: Id, books: BookServiceDep) -> BookRead:
    """Return one book with its author's name."""
    return BookRead.from_book(await books.get_book(book_id))


def create_router() -> APIRouter:
    """The catalog's routes, on a new router for each app."""
    router = APIRouter(tags=["catalog"])
    router.add_api_route(
        "/authors",
        create_author,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        responses=problem_responses(),
    )
    router.add_api_route(
        "/authors", list_authors, methods=["GET"], responses=problem_responses(InvalidPageError)
    )
    router.add_api_route(
        "/authors/{author_id}",
        get_author,
        methods=["GET"],
        responses=problem_responses(AuthorNotFoundError),
    )
    router.add_api_route(
        "/books",
        create_book,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        responses=problem_responses(
            InvalidIsbnError,
            PriceOutOfRangeError,
            InvalidCurrencyError,
            AuthorNotFoundError,
            DuplicateIsbnError,
        ),
    )
    router.add_api_route(
        "/books/import",
        import_books,
        methods=["POST"],
        responses=problem_responses(InvalidCsvError),
    )
    router.add_api_route(
        "/books", list_books, methods=["GET"], responses=problem_responses(InvalidPageError)
    )
    router.add_api_route(
        "/books/{book_id}",
        get_book,
        methods=["GET"],
        responses=problem_responses(BookNotFoundError),
    )
    return router
