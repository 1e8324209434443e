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
from shelfwise.platform.jobs import Jobs
from shelfwise.platform.unit_of_work import SqlUnitOfWork, UnitOfWork


async def get_database(request: Request) -> Database:
    """The ``Database`` the app's lifespan created."""
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_jobs(request: Request) -> Jobs:
    """The app's ``Jobs``: how a request sends work to run after it."""
    jobs: Jobs = request.app.state.jobs
    return jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


# Methods that change nothing, by HTTP's definition: their requests read from the replica.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: rolled back if the request fails, always closed.

    A request with a safe method gets a read-only session (on the replica, when there is one);
    any other, a session on the primary. This dependency never commits. The service commits
    through its unit of work, inside the endpoint, before the response is built: committing
    here, after the endpoint returned, would be too late, as the commit could fail after the
    client was told "201 Created". FastAPI caches a dependency per request, so every
    repository, unit of work and service of a request shares this one session, and the
    database's breaker and error translation (``Database.session``) see all it does.

    It takes the request, not ``DatabaseDep``: FastAPI solves a dependency's own dependencies
    each time it is named, even when its value is cached, and many dependencies name this one.
    """
    database = await get_database(request)
    if request.method in SAFE_METHODS:
        async with database.session(read_only=True) as reading:
            yield reading
    else:
        async with database.session() as writing:
            yield writing


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_unit_of_work(session: SessionDep) -> UnitOfWork:
    """The unit of work over the request's session."""
    return SqlUnitOfWork(session)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
