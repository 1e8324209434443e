"""How the catalog's services are built for a request: the only place that picks the SQL adapters.

Routes ask for ``BookServiceDep``; tests replace ``get_book_service`` through
``app.dependency_overrides``. Other features' services name ``BookRepositoryDep``.
"""

from typing import Annotated

from fastapi import Depends

from shelfwise.catalog.ports import BookRepository
from shelfwise.catalog.repository import SqlAuthorRepository, SqlBookRepository
from shelfwise.catalog.service import ISBN_SEARCH, AuthorService, BookService
from shelfwise.platform.dependencies import SessionDep
from shelfwise.platform.unit_of_work import SqlUnitOfWork
from shelfwise.tenancy.dependencies import FeatureFlagsDep


async def get_book_repository(session: SessionDep) -> BookRepository:
    """Books in the request's session."""
    return SqlBookRepository(session)


BookRepositoryDep = Annotated[BookRepository, Depends(get_book_repository)]


async def get_book_service(session: SessionDep, flags: FeatureFlagsDep) -> BookService:
    """A BookService working in the request's session, with the current tenant's flags.

    It builds its adapters itself rather than naming their dependencies: every catalog read
    builds this service, and FastAPI solves each named dependency's own again, each time
    (part 13 measured it).
    """
    isbn_search = await flags.is_enabled(session, ISBN_SEARCH)
    return BookService(
        SqlBookRepository(session),
        SqlAuthorRepository(session),
        SqlUnitOfWork(session),
        isbn_search=isbn_search,
    )


async def get_author_service(session: SessionDep) -> AuthorService:
    """An AuthorService working in the request's session."""
    return AuthorService(SqlAuthorRepository(session), SqlUnitOfWork(session))


BookServiceDep = Annotated[BookService, Depends(get_book_service)]
AuthorServiceDep = Annotated[AuthorService, Depends(get_author_service)]
