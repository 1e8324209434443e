"""Which tenants are active: a list no tenant's transaction can read, since row-level security
shows each only its own row of ``tenants`` (wall 2), and that background work for every tenant
needs. On PostgreSQL a function that runs with its owner's rights returns the ids and nothing
else, as the login lookup does (part 9); the app's role may call it, not read the table."""

from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shelfwise.tenancy.models import Tenant, TenantStatus

ACTIVE_TENANTS = "shelfwise_active_tenants"


async def install_active_tenants(connection: AsyncConnection, app_role: str | None) -> None:
    """Create the lookup (as the tables' owner) and let ``app_role`` call it."""
    await connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {ACTIVE_TENANTS}() RETURNS SETOF uuid "
        # search_path pinned: a definer's function must not resolve names the caller chose.
        "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$ "
        f"SELECT id FROM tenants WHERE status = '{TenantStatus.ACTIVE.value}' ORDER BY id $$"
    )
    await connection.exec_driver_sql(f"REVOKE ALL ON FUNCTION {ACTIVE_TENANTS}() FROM PUBLIC")
    if app_role:
        quoted = connection.dialect.identifier_preparer.quote(app_role)
        await connection.exec_driver_sql(
            f"GRANT EXECUTE ON FUNCTION {ACTIVE_TENANTS}() TO {quoted}"
        )


async def active_tenant_ids(session: AsyncSession) -> list[UUID]:
    """The ids of the active tenants, in a stable order."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # On the connection: the ORM filter would refuse raw SQL without a tenant.
        found = await connection.execute(text(f"SELECT * FROM {ACTIVE_TENANTS}()"))
        return [row[0] for row in found]
    # Elsewhere nothing hides the table: tenants are a global table, which wall 1 lets through.
    listed = await session.scalars(
        select(Tenant.id).where(Tenant.status == TenantStatus.ACTIVE).order_by(Tenant.id)
    )
    return list(listed)
