"""How the catalog's services are built for a request: the only place that picks the SQL adapters.

Routes ask for ``BookServiceDep``; tests replace ``get_book_service`` (or a repository
dependency) through ``app.dependency_overrides``.
"""

from typing import Annotated

from fastapi import Depends

from shelfwise.catalog.ports import AuthorRepository, BookRepository
from shelfwise.catalog.repository import SqlAuthorRepository, SqlBookRepository
from shelfwise.catalog.service import ISBN_SEARCH, AuthorService, BookService
from shelfwise.platform.dependencies import SessionDep, UnitOfWorkDep
from shelfwise.tenancy.dependencies import FeatureFlagsDep


async def get_book_repository(session: SessionDep) -> BookRepository:
    """Books in the request's session."""
    return SqlBookRepository(session)


async def get_author_repository(session: SessionDep) -> AuthorRepository:
    """Authors in the request's session."""
    return SqlAuthorRepository(session)


BookRepositoryDep = Annotated[BookRepository, Depends(get_book_repository)]
AuthorRepositoryDep = Annotated[AuthorRepository, Depends(get_author_repository)]


async def get_book_service(
    books: BookRepositoryDep,
    authors: AuthorRepositoryDep,
    uow: UnitOfWorkDep,
    flags: FeatureFlagsDep,
    session: SessionDep,
) -> BookService:
    """A BookService working in the request's session, with the current tenant's flags."""
    isbn_search = await flags.is_enabled(session, ISBN_SEARCH)
    return BookService(books, authors, uow, isbn_search=isbn_search)


async def get_author_service(authors: AuthorRepositoryDep, uow: UnitOfWorkDep) -> AuthorService:
    """An AuthorService working in the request's session."""
    return AuthorService(authors, uow)


BookServiceDep = Annotated[BookService, Depends(get_book_service)]
AuthorServiceDep = Annotated[AuthorService, Depends(get_author_service)]
