"""Wall 2: PostgreSQL's row-level security, keyed on a setting each transaction carries.

Policies on every tenant-scoped table compare ``tenant_id`` with the ``app.tenant_id``
setting, which the session sets at the start of every transaction from the tenant context.
The database applies them to every statement, raw SQL included, for any role that does not
own the tables (FORCE extends them to the owner, too; only superusers and BYPASSRLS roles
pass by).
"""

import hashlib

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from shelfwise.platform.db import Base, session_class
from shelfwise.tenancy.context import current_scope
from shelfwise.tenancy.models import TenantScoped

TENANT_SETTING = "app.tenant_id"
# NULLIF: once a connection has set the setting, it reads '' (not NULL) after the transaction
# that set it; '' means "no tenant", which matches no row, rather than a cast error.
CURRENT_TENANT_SQL = f"NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"


def install_row_security(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Set the tenant at the start of every transaction of ``session_factory``'s sessions."""
    event.listen(session_class(session_factory), "after_begin", set_database_tenant)


def set_database_tenant(
    _session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    """Tell PostgreSQL the tenant, for this transaction only (``set_config``'s ``true``)."""
    if connection.dialect.name != "postgresql":
        return
    scope = current_scope()
    if scope is not None and scope.tenant_id is not None:
        connection.execute(select(func.set_config(TENANT_SETTING, str(scope.tenant_id), True)))


def row_level_security(table: str, using: str, with_check: str | None = None) -> list[str]:
    """The statements that put ``table`` behind a policy (idempotent: safe on every start)."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING ({using}) "
        f"WITH CHECK ({with_check or using})",
    ]


def tenant_scoped_tables() -> list[str]:
    """The tables of every ``TenantScoped`` model imported so far, sorted."""
    return sorted(
        mapper.tables[0].name
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, TenantScoped)
    )


def tenant_policies() -> list[str]:
    """The policies of the tenants table and of every tenant-scoped table."""
    statements = row_level_security("tenants", f"id = {CURRENT_TENANT_SQL}")
    for table in tenant_scoped_tables():
        statements += row_level_security(table, f"tenant_id = {CURRENT_TENANT_SQL}")
    return statements


# Where the fingerprint of the policies in place is kept: a comment on a table that always exists.
POLICIES_MARK = "tenants"


async def apply_policies(connection: AsyncConnection, statements: list[str]) -> bool:
    """Run policy ``statements`` unless these very statements were run before; returns whether
    they ran. ``connection`` must be the tables' owner's.

    ``ALTER TABLE`` and ``CREATE POLICY`` lock each table exclusively until the transaction
    ends, one table after another, while live requests lock tables in their own order: on a
    database in use, running them again deadlocks requests. So they run only when they differ
    from those that ran last, and the fingerprint is kept on the database itself.
    """
    digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()
    fingerprint = f"shelfwise policies {digest}"
    in_place = await connection.scalar(
        text(f"SELECT obj_description('{POLICIES_MARK}'::regclass, 'pg_class')")
    )
    if in_place == fingerprint:
        return False
    for statement in statements:
        await connection.exec_driver_sql(statement)
    await connection.exec_driver_sql(f"COMMENT ON TABLE {POLICIES_MARK} IS '{fingerprint}'")
    return True


async def row_security_binds(connection: AsyncConnection) -> bool:
    """Whether policies bind the role ``connection`` is logged in as: superusers and roles
    with BYPASSRLS pass by every policy, and wall 2 would silently not be there."""
    exempt = await connection.scalar(
        text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    )
    return not exempt
