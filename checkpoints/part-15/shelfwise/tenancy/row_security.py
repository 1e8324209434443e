"""Wall 2: PostgreSQL's row-level security, keyed on a setting each transaction carries.

Policies on every tenant-scoped table compare ``tenant_id`` with the ``app.tenant_id``
setting, which the session sets at the start of every transaction from the tenant context.
The database applies them to every statement, raw SQL included, for any role that does not
own the tables (FORCE extends them to the owner, too; only superusers and BYPASSRLS roles
pass by).
"""

import hashlib
from dataclasses import dataclass

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


POLICY = "tenant_isolation"


@dataclass(frozen=True)
class TablePolicy:
    """Wall 2 on one table: row-level security enabled and forced, under one policy."""

    table: str
    using: str
    with_check: str

    @property
    def statements(self) -> list[str]:
        """The statements that put the table behind the policy (safe to run again)."""
        return [
            f"ALTER TABLE {self.table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {self.table} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS {POLICY} ON {self.table}",
            f"CREATE POLICY {POLICY} ON {self.table} USING ({self.using}) "
            f"WITH CHECK ({self.with_check})",
        ]

    @property
    def fingerprint(self) -> str:
        """What the policy's comment says once these very statements have run."""
        digest = hashlib.sha256("\n".join(self.statements).encode()).hexdigest()
        return f"shelfwise {digest}"


def row_level_security(table: str, using: str, with_check: str | None = None) -> TablePolicy:
    """``table`` behind a policy that lets a row be seen if ``using`` holds for it, and written
    if ``with_check`` (by default ``using``) does."""
    return TablePolicy(table, using, with_check or using)


def tenant_scoped_tables() -> list[str]:
    """The tables of every ``TenantScoped`` model imported so far, sorted."""
    return sorted(
        mapper.tables[0].name
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, TenantScoped)
    )


def tenant_policies() -> list[TablePolicy]:
    """The policies of the tenants table and of every tenant-scoped table."""
    policies = [row_level_security("tenants", f"id = {CURRENT_TENANT_SQL}")]
    for table in tenant_scoped_tables():
        policies.append(row_level_security(table, f"tenant_id = {CURRENT_TENANT_SQL}"))
    return policies


# How long the policies' statements wait for a table's lock before giving up: well under
# PostgreSQL's deadlock_timeout (1 s), so that they give up before a deadlock is looked for.
LOCK_WAIT_MS = 200
# SQLSTATE 55P03: a lock was not granted within lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"

# Tables in the search path whose row-level security is enabled and forced, with our policy and
# its comment. Reading the catalogs takes no lock on the tables.
POLICIES_IN_PLACE = text(
    "SELECT c.relname, obj_description(p.oid, 'pg_policy') FROM pg_class AS c "
    f"JOIN pg_policy AS p ON p.polrelid = c.oid AND p.polname = '{POLICY}' "
    "WHERE c.relrowsecurity AND c.relforcerowsecurity AND pg_table_is_visible(c.oid)"
)


async def apply_policies(connection: AsyncConnection, policies: list[TablePolicy]) -> list[str]:
    """Put each table behind its policy unless it is already; returns the tables it changed.
    ``connection`` must be the tables' owner's.

    The statements lock their table in ACCESS EXCLUSIVE mode until the transaction ends, one
    table after another, while live requests lock tables in their own order: run again on a
    database in use, they deadlocked requests. So a table is left alone when its policy is in
    place and carries the fingerprint of the statements that made it, and the tables that do
    need them are locked together first, or not at all (``LOCK_NOT_AVAILABLE``). A policy
    dropped by hand, or row-level security switched off, is put back; a policy altered by hand
    under the same name is not noticed.
    """
    rows = await connection.execute(POLICIES_IN_PLACE)
    in_place: dict[str, str | None] = {table: comment for table, comment in rows}
    stale = [policy for policy in policies if in_place.get(policy.table) != policy.fingerprint]
    if not stale:
        return []
    # Every lock the statements need, at once, and not waited for long: a request holding one
    # of these tables may be about to wait for another we hold, and PostgreSQL would break the
    # cycle by rolling one of us back, perhaps the request. Giving up first (SQLSTATE 55P03)
    # leaves requests alone; the caller tries again.
    await connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'")
    tables = ", ".join(policy.table for policy in stale)
    await connection.exec_driver_sql(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
    changed = []
    for policy in stale:
        for statement in policy.statements:
            await connection.exec_driver_sql(statement)
        await connection.exec_driver_sql(
            f"COMMENT ON POLICY {POLICY} ON {policy.table} IS '{policy.fingerprint}'"
        )
        changed.append(policy.table)
    return changed


async def row_security_binds(connection: AsyncConnection) -> bool:
    """Whether policies bind the role ``connection`` is logged in as: superusers and roles
    with BYPASSRLS pass by every policy, and wall 2 would silently not be there."""
    exempt = await connection.scalar(
        text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    )
    return not exempt
