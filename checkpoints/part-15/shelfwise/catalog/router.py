"""HTTP endpoints of the catalog: translate JSON to service calls and back, nothing more.

Reads answer from the cache when they can; every route that writes tells the cache, after
its commit.
"""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

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
from shelfwise.platform.rate_limit import costs
from shelfwise.platform.schemas import MAX_INT, NO_NUL, Id, PageModel, WholeNumber
from shelfwise.tenancy.cache import cached_json
from shelfwise.tenancy.dependencies import TenantCacheDep

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE), WholeNumber]
Offset = Annotated[int, Query(ge=0, le=MAX_INT), WholeNumber]
SearchText = Annotated[
    str | None, Query(max_length=200, pattern=NO_NUL, description="Match title or author name")
]


# Entities as the cache knows them: a write to one makes all its cached reads stale.
AUTHOR = "author"
BOOK = "book"
# The pages worth caching: the first ones, in the page sizes clients use. Any other
# limit/offset is read from the database, so a client walking offsets one by one cannot
# fill the cache with pages nobody else asks for.
CACHED_PAGE_SIZES = frozenset({DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE})
CACHED_PAGES = 10


def page_item(limit: int, offset: int) -> str | None:
    """The cache's name for this page, or ``None`` if it is not one worth caching."""
    if limit in CACHED_PAGE_SIZES and offset % limit == 0 and offset < limit * CACHED_PAGES:
        return f"page:{limit}:{offset}"
    return None


async def create_author(
    body: AuthorCreate, authors: AuthorServiceDep, cache: TenantCacheDep
) -> AuthorRead:
    """Add an author."""
    author = await authors.create_author(body.name)
    await cache.changed(AUTHOR)
    return AuthorRead.from_author(author)


async def list_authors(
    authors: AuthorServiceDep,
    cache: TenantCacheDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
) -> Response:
    """List authors in id order, one page at a time."""

    async def produce() -> PageModel[AuthorRead]:
        page = await authors.list_authors(limit=limit, offset=offset)
        return PageModel[AuthorRead].from_page(page, AuthorRead.from_author)

    return await cached_json(cache, AUTHOR, page_item(limit, offset), produce)


async def get_author(author_id: Id, authors: AuthorServiceDep, cache: TenantCacheDep) -> Response:
    """Return one author."""

    async def produce() -> AuthorRead:
        return AuthorRead.from_author(await authors.get_author(author_id))

    return await cached_json(cache, AUTHOR, str(author_id), produce)


async def create_book(body: BookCreate, books: BookServiceDep, cache: TenantCacheDep) -> BookRead:
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
    book = await books.create_book(new_book)
    await cache.changed(BOOK)
    return BookRead.from_book(book)


async def import_books(
    csv_text: Annotated[str, Body(media_type="text/csv", min_length=1)],
    books: BookServiceDep,
    cache: TenantCacheDep,
) -> ImportReportRead:
    """Add books from a CSV file; rows that break a rule are reported, the others imported."""
    report = await import_books_csv(csv_text, books)
    await cache.changed(BOOK)
    return ImportReportRead.from_report(report)


async def list_books(
    books: BookServiceDep,
    cache: TenantCacheDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
    q: SearchText = None,
) -> Response:
    """List books in id order, or only those matching ``q``, one page at a time."""

    async def produce() -> PageModel[BookRead]:
        if q is None:
            page = await books.list_books(limit=limit, offset=offset)
        else:
            page = await books.search_books(q, limit=limit, offset=offset)
        return PageModel[BookRead].from_page(page, BookRead.from_book)

    # Searches are too many and too varied to be worth keeping.
    item = page_item(limit, offset) if q is None else None
    return await cached_json(cache, BOOK, item, produce)


async def get_book(book_id: Id, books: BookServiceDep, cache: TenantCacheDep) -> Response:
    """Return one book with its author's name."""

    async def produce() -> BookRead:
        return BookRead.from_book(await books.get_book(book_id))

    return await cached_json(cache, BOOK, str(book_id), produce)


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
        "/authors",
        list_authors,
        methods=["GET"],
        response_model=PageModel[AuthorRead],
        responses=problem_responses(InvalidPageError),
    )
    router.add_api_route(
        "/authors/{author_id}",
        get_author,
        methods=["GET"],
        response_model=AuthorRead,
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
        # Up to 1,000 rows in one request.
        openapi_extra=costs(20),
    )
    router.add_api_route(
        "/books",
        list_books,
        methods=["GET"],
        response_model=PageModel[BookRead],
        responses=problem_responses(InvalidPageError),
    )
    router.add_api_route(
        "/books/{book_id}",
        get_book,
        methods=["GET"],
        response_model=BookRead,
        responses=problem_responses(BookNotFoundError),
    )
    return router
