"""Fixtures of the catalog's unit tests: the services on in-memory fakes.

The author repository starts with one author (id 1), whom ``tests.factories.new_book`` uses.
"""

import pytest

from shelfwise.catalog.models import Author
from shelfwise.catalog.service import BookService
from tests.catalog.fakes import InMemoryAuthorRepository, InMemoryBookRepository
from tests.platform.fakes import FakeUnitOfWork


@pytest.fixture
async def authors() -> InMemoryAuthorRepository:
    authors = InMemoryAuthorRepository()
    await authors.add(Author(name="Ursula K. Le Guin"))
    return authors


@pytest.fixture
def books(authors: InMemoryAuthorRepository) -> InMemoryBookRepository:
    return InMemoryBookRepository(authors)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def service(
    books: InMemoryBookRepository, authors: InMemoryAuthorRepository, uow: FakeUnitOfWork
) -> BookService:
    return BookService(books, authors, uow)
