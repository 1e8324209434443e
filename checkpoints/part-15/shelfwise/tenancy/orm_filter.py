"""Wall 1: the ORM adds the tenant to every query and stamps it on every new row.

A session hook, so no repository has to remember: ``select(Book)`` becomes "the current
tenant's books" wherever it is written, including joins, subqueries, relationship loads and
ORM updates and deletes. With no tenant in context a statement fails instead of running
unfiltered. Raw SQL is beyond its sight; that is wall 2's job (``row_security``).
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, with_loader_criteria

from shelfwise.platform.db import session_class
from shelfwise.tenancy.context import current_scope, current_tenant_id
from shelfwise.tenancy.models import TenantScoped


class CrossTenantWriteError(RuntimeError):
    """A row was about to be written under a tenant other than the current one."""


def install_orm_filter(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Filter and stamp on every session ``session_factory`` opens."""
    sessions = session_class(session_factory)
    event.listen(sessions, "do_orm_execute", filter_by_tenant)
    event.listen(sessions, "before_flush", stamp_tenant)


def filter_by_tenant(state: ORMExecuteState) -> None:
    """Add the current tenant to the statement, or refuse to run it without one."""
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria of the statement that started the load already apply
    scope = current_scope()
    if scope is not None and scope.is_system:
        return
    if scope is None:
        if not _may_run_without_tenant(state.all_mappers):
            current_tenant_id()  # raises NoTenantError: fail closed, never "all tenants"
        return
    tenant_id = current_tenant_id()
    state.statement = state.statement.options(
        # A lambda, so the statement's cache key stays the same and the id is a bound parameter.
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
        )
    )


def _may_run_without_tenant(mappers: Sequence[Mapper[Any]]) -> bool:
    # Only statements naming nothing but global models (tenants, users) run without a tenant.
    # No mappers at all (a count over a subquery, raw SQL) cannot be checked, so it may not.
    return bool(mappers) and not any(issubclass(m.class_, TenantScoped) for m in mappers)


def stamp_tenant(session: Session, _context: Any, _instances: Any) -> None:
    """A new row gets the current tenant; a row naming another tenant is refused."""
    scope = current_scope()
    for instance in session.new:
        if not isinstance(instance, TenantScoped):
            continue
        if scope is not None and scope.is_system:
            if instance.tenant_id is None:
                raise CrossTenantWriteError(f"{instance!r}: a system context names the tenant")
            continue
        tenant_id = current_tenant_id()
        if instance.tenant_id is None:
            instance.tenant_id = tenant_id
        elif instance.tenant_id != tenant_id:
            raise CrossTenantWriteError(
                f"{instance!r} belongs to tenant {instance.tenant_id}, not {tenant_id}"
            )
