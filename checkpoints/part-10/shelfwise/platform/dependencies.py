"""FastAPI dependencies for the platform's resources, and their ``Annotated`` aliases.

A route (or a feature's own dependency) declares what it needs with an alias such as
``SessionDep``; FastAPI builds it per request, and a test swaps it through
``app.dependency_overrides``. Nothing here is created at import time: everything is reached
through the app the request belongs to.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.platform.db import Database
from shelfwise.platform.unit_of_work import SqlUnitOfWork, UnitOfWork


async def get_database(request: Request) -> Database:
    """The ``Database`` the app's lifespan created."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One session per request: rolled back if the request fails, always closed.

    This dependency never commits. The service commits through its unit of work, inside the
    endpoint, before the response is built. Committing here, after the endpoint returned, would
    be too late: the commit could fail after the client was already told "201 Created".
    FastAPI caches a dependency per request, so every repository, unit of work and service of a
    request shares this one session.
    """
    async with database.session_factory() as session:  # closing returns the connection
        try:
            yield session
        except BaseException:
            # Whatever the endpoint wrote and did not commit is discarded before the error
            # travels on to the exception handlers.
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_unit_of_work(session: SessionDep) -> UnitOfWork:
    """The unit of work over the request's session."""
    return SqlUnitOfWork(session)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
