"""The request-scoped session: one per request, rolled back on error, always closed."""

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from shelfwise.catalog.models import Author
from shelfwise.platform.dependencies import SessionDep, UnitOfWorkDep


async def count_authors_in_a_new_session(app: FastAPI) -> int:
    async with app.state.database.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(Author)) or 0


def connections_in_use(app: FastAPI) -> int:
    pool = app.state.database.engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


async def test_a_failing_request_leaves_nothing_behind(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def add_an_author_then_fail(session: SessionDep) -> None:
        session.add(Author(name="Never Stored"))
        await session.flush()  # the row reached the database, inside the transaction
        raise RuntimeError("boom")

    app.add_api_route("/test/fail", add_an_author_then_fail, methods=["POST"])

    response = await client.post("/test/fail")

    assert response.status_code == 500
    assert await count_authors_in_a_new_session(app) == 0
    assert connections_in_use(app) == 0


async def test_a_succeeding_request_is_committed_by_its_unit_of_work(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def add_an_author(session: SessionDep, uow: UnitOfWorkDep) -> None:
        async with uow:
            session.add(Author(name="Octavia E. Butler"))
            await uow.commit()

    app.add_api_route("/test/succeed", add_an_author, methods=["POST"], status_code=201)

    response = await client.post("/test/succeed")

    assert response.status_code == 201
    assert await count_authors_in_a_new_session(app) == 1
    assert connections_in_use(app) == 0


async def test_every_dependency_of_a_request_shares_one_session(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    seen: list[AsyncSession] = []

    async def record_sessions(first: SessionDep, second: SessionDep) -> None:
        seen.extend([first, second])

    app.add_api_route("/test/sessions", record_sessions, methods=["GET"])

    await client.get("/test/sessions")
    await client.get("/test/sessions")

    assert seen[0] is seen[1]  # one request, one session
    assert seen[2] is not seen[0]  # the next request gets its own
