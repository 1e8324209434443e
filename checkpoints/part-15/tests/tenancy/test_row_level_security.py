"""Wall 2, PostgreSQL's row-level security, holding with no help from the ORM: raw SQL as the
app's role sees and writes only the tenant its transaction names."""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shelfwise.identity.repository import user_policies
from shelfwise.main import create_app, prepare_database
from shelfwise.platform.db import Base, create_engine, create_session_factory
from shelfwise.platform.settings import Settings
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.orm_filter import install_orm_filter
from shelfwise.tenancy.row_security import apply_policies, tenant_policies
from tests.databases import as_app_role, empty_database, settings_for
from tests.factories import Tenants, a_book, seed_tenants

pytestmark = pytest.mark.postgresql


@pytest.fixture
async def owner_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with empty_database("postgresql", request, tmp_path) as url:
        yield url


@pytest.fixture
async def seeded(owner_url: str, password_hash: str) -> Tenants:
    """Both tenants, with one book each (book 1 is A's, book 2 is B's)."""
    await prepare_database(Settings(database=settings_for(as_app_role(owner_url), owner_url)))
    owner = create_engine(owner_url)
    try:
        tenants = await seed_tenants(owner, password_hash)
        session_factory = create_session_factory(owner)
        install_orm_filter(session_factory)
        async with session_factory() as session:
            for tenant, number in ((tenants.a, 1), (tenants.b, 2)):
                with tenant_context(tenant.id):
                    session.add(a_book(number))
                    await session.commit()
    finally:
        await owner.dispose()
    return tenants


@pytest.fixture
async def app_role(owner_url: str, seeded: Tenants) -> AsyncIterator[AsyncEngine]:
    """An engine logged in as the app's role, with no ORM and so no wall 1: one connection."""
    engine = create_engine(as_app_role(owner_url))
    engine.pool._pool.maxsize = 1  # type: ignore[attr-defined]
    yield engine
    await engine.dispose()


async def as_tenant(connection: AsyncConnection, tenant_id: UUID) -> None:
    await connection.execute(
        text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": str(tenant_id)}
    )


async def titles(connection: AsyncConnection) -> list[str]:
    return list((await connection.scalars(text("SELECT title FROM books ORDER BY id"))).all())


async def test_raw_sql_sees_only_the_tenant_its_transaction_names(
    app_role: AsyncEngine, seeded: Tenants
) -> None:
    async with app_role.connect() as connection:
        assert await titles(connection) == []  # no tenant: no rows, not all of them
    async with app_role.begin() as connection:
        await as_tenant(connection, seeded.b.id)
        assert await titles(connection) == ["Book 2"]
        emails = (await connection.scalars(text("SELECT email FROM users"))).all()
        assert emails == ["beta@example.com"]


async def test_the_tenant_ends_with_the_transaction_so_the_pool_never_carries_it_on(
    app_role: AsyncEngine, seeded: Tenants
) -> None:
    async with app_role.begin() as connection:
        first_backend = await connection.scalar(text("SELECT pg_backend_pid()"))
        await as_tenant(connection, seeded.a.id)
        assert await titles(connection) == ["Book 1"]

    async with app_role.begin() as connection:  # the same pooled connection, a new request
        assert await connection.scalar(text("SELECT pg_backend_pid()")) == first_backend
        assert await titles(connection) == []


async def test_a_write_into_another_tenant_is_refused(
    app_role: AsyncEngine, seeded: Tenants
) -> None:
    async with app_role.begin() as connection:
        await as_tenant(connection, seeded.a.id)
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(
                text("INSERT INTO authors (tenant_id, name) VALUES (:b, 'Planted')"),
                {"b": seeded.b.id},
            )


async def test_a_change_to_another_tenants_rows_changes_nothing(
    app_role: AsyncEngine, seeded: Tenants
) -> None:
    async with app_role.begin() as connection:
        await as_tenant(connection, seeded.a.id)
        deleted = await connection.execute(text("DELETE FROM stock"))
        renamed = await connection.execute(text("UPDATE books SET title = 'Mine' WHERE id = 2"))
    assert (deleted.rowcount, renamed.rowcount) == (0, 0)


async def test_the_login_lookup_returns_one_user_by_email_and_changes_nothing(
    app_role: AsyncEngine, seeded: Tenants
) -> None:
    async with app_role.connect() as connection:  # no tenant: the lookup alone reads users
        found = (
            await connection.execute(
                text("SELECT user_id, tenant_id FROM shelfwise_login_candidate('beta@example.com')")
            )
        ).all()
    assert found == [(seeded.b.user_id, seeded.b.id)]


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE tenants SET status = 'active'", "permission denied"),
        ("UPDATE users SET email = 'taken@example.com'", "permission denied"),
        ("CREATE TEMPORARY TABLE authors (id integer)", "permission denied"),
        ("ALTER TABLE books DISABLE ROW LEVEL SECURITY", "must be owner"),
        ("DROP POLICY tenant_isolation ON books", "must be owner"),
    ],
    ids=["lift a suspension", "take over users", "shadow a table", "disable RLS", "drop a policy"],
)
async def test_the_app_role_may_only_read_and_write_tenant_rows(
    app_role: AsyncEngine, seeded: Tenants, statement: str, refusal: str
) -> None:
    async with app_role.begin() as connection:
        await as_tenant(connection, seeded.a.id)
        with pytest.raises(DBAPIError, match=refusal):
            await connection.execute(text(statement))


async def test_the_app_warns_when_its_role_would_pass_by_every_policy(
    owner_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The superuser, as many tutorials have it.
    app = create_app(Settings(database=settings_for(owner_url)))

    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            pass

    assert "row-level security (wall 2) does not apply" in caplog.text


async def test_preparing_a_database_in_use_again_waits_for_no_request(
    owner_url: str, seeded: Tenants
) -> None:
    """Every app start and every CLI command prepares the database. Once it is prepared, that
    takes no lock a request holds: the policies' DDL would, and deadlocked requests (500s)."""
    owner = create_engine(owner_url)
    try:
        async with owner.connect() as request:  # a request that has read every table, not done
            for table in Base.metadata.tables:
                await request.execute(text(f"SELECT 1 FROM {table} LIMIT 1"))
            settings = Settings(database=settings_for(as_app_role(owner_url), owner_url))
            await asyncio.wait_for(prepare_database(settings), timeout=5)
    finally:
        await owner.dispose()


async def test_a_table_is_put_behind_its_policy_again_only_when_it_is_not(
    owner_url: str, seeded: Tenants
) -> None:
    policies = tenant_policies() + user_policies()
    books = next(policy for policy in policies if policy.table == "books")
    forced = "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'books'"
    owner = create_engine(owner_url)
    try:
        async with owner.begin() as connection:
            assert await apply_policies(connection, policies) == []  # prepare_database ran them
            changed = replace(books, using="false")  # a new release's policy for books
            assert await apply_policies(connection, [changed]) == ["books"]
            assert await apply_policies(connection, [changed]) == []
            assert await apply_policies(connection, policies) == ["books"]
            # Changed by hand: switched off on books, dropped on users; both put back.
            await connection.execute(text("ALTER TABLE books NO FORCE ROW LEVEL SECURITY"))
            await connection.execute(text("DROP POLICY tenant_isolation ON users"))
            assert not await connection.scalar(text(forced))
            assert sorted(await apply_policies(connection, policies)) == ["books", "users"]
            assert await connection.scalar(text(forced))
            assert await apply_policies(connection, policies) == []
    finally:
        await owner.dispose()


async def test_two_processes_preparing_at_once_both_succeed(
    owner_url: str, seeded: Tenants
) -> None:
    """Replicas that start together: the catalog updates (grants, the login lookup) of two
    preparers at once would fail one of them ("tuple concurrently updated")."""
    settings = Settings(database=settings_for(as_app_role(owner_url), owner_url))
    await asyncio.gather(*(prepare_database(settings) for _ in range(4)))


async def test_policies_changed_on_a_database_in_use_wait_their_turn_and_deadlock_no_one(
    owner_url: str, seeded: Tenants
) -> None:
    """A release that changes every policy, started while a request holds one table and goes
    on to read another: the preparer gives up its locks, and tries again once it may."""
    policies = tenant_policies() + user_policies()
    settings = Settings(database=settings_for(as_app_role(owner_url), owner_url))
    owner = create_engine(owner_url)
    try:
        async with owner.begin() as connection:
            for policy in policies:
                await connection.execute(
                    text(f"COMMENT ON POLICY tenant_isolation ON {policy.table} IS NULL")
                )
        async with owner.connect() as request:
            await request.execute(text("SELECT 1 FROM books LIMIT 1"))
            preparing = asyncio.create_task(prepare_database(settings))
            await asyncio.sleep(0.1)  # it has locked tenants, and waits for books
            await request.execute(text("SELECT 1 FROM tenants LIMIT 1"))  # no deadlock
            await request.commit()
        await asyncio.wait_for(preparing, timeout=10)
        async with owner.begin() as connection:
            assert await apply_policies(connection, policies) == []
    finally:
        await owner.dispose()
