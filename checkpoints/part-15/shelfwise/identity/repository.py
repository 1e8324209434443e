"""SQLAlchemy adapter for the identity ports."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shelfwise.identity.models import User
from shelfwise.identity.ports import Account
from shelfwise.identity.tokens import Principal
from shelfwise.tenancy.models import Tenant, TenantStatus
from shelfwise.tenancy.row_security import CURRENT_TENANT_SQL, TablePolicy, row_level_security

if TYPE_CHECKING:
    from shelfwise.identity.ports import Accounts

# Logging in finds a user by email before any tenant is known, and row-level security shows a
# transaction without a tenant no user at all. So on PostgreSQL the lookup is a function that
# runs with its owner's rights and returns the one row matching the email: no policy has to
# let rows through, and the function can read but never change a user.
LOGIN_LOOKUP = "shelfwise_login_candidate"


def user_policies() -> list[TablePolicy]:
    """Wall 2 for users: a transaction sees and changes its own tenant's users only."""
    return [row_level_security("users", f"tenant_id = {CURRENT_TENANT_SQL}")]


async def install_login_lookup(connection: AsyncConnection, app_role: str | None) -> None:
    """Create the login lookup function (as the tables' owner) and let ``app_role`` call it."""
    await connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {LOGIN_LOOKUP}(login_email text) "
        "RETURNS TABLE (user_id integer, tenant_id uuid, password_hash text, status text) "
        # search_path pinned: a definer's function must not resolve names the caller chose.
        "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$ "
        "SELECT u.id, u.tenant_id, u.password_hash::text, t.status::text "
        "FROM users AS u JOIN tenants AS t ON t.id = u.tenant_id WHERE u.email = login_email $$"
    )
    await connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {LOGIN_LOOKUP}(text) FROM PUBLIC")
    if app_role:
        quoted = connection.dialect.identifier_preparer.quote(app_role)
        await connection.exec_driver_sql(
            f"GRANT EXECUTE ON FUNCTION {LOGIN_LOOKUP}(text) TO {quoted}"
        )


class SqlAccounts:
    """Accounts read through one ``AsyncSession``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find_by_email(self, email: str) -> Account | None:
        connection = await self._session.connection()
        row: Sequence[Any] | None
        if connection.dialect.name == "postgresql":
            # On the connection, not the session: the ORM filter would refuse raw SQL run
            # without a tenant, and this is the one statement that must run without one.
            found = await connection.execute(
                text(f"SELECT * FROM {LOGIN_LOOKUP}(:email)"), {"email": email}
            )
            row = found.one_or_none()
        else:
            row = (
                await self._session.execute(
                    select(User.id, User.tenant_id, User.password_hash, Tenant.status)
                    .join(Tenant, Tenant.id == User.tenant_id)
                    .where(User.email == email)
                )
            ).one_or_none()
        if row is None:
            return None
        user_id, tenant_id, password_hash, status = row
        return Account(
            Principal(user_id, tenant_id),
            password_hash,
            tenant_active=status == TenantStatus.ACTIVE,
        )

    async def find(self, principal: Principal) -> Account | None:
        row = (
            await self._session.execute(
                select(User.password_hash, Tenant.status)
                .join(Tenant, Tenant.id == User.tenant_id)
                .where(User.id == principal.user_id, User.tenant_id == principal.tenant_id)
            )
        ).one_or_none()
        if row is None:
            return None
        password_hash, status = row
        return Account(principal, password_hash, tenant_active=status is TenantStatus.ACTIVE)


if TYPE_CHECKING:
    # mypy proves the adapter satisfies the port; nothing runs at runtime.
    def _conforms(session: AsyncSession) -> Accounts:
        return SqlAccounts(session)
