"""Which tenant the running code acts for: one ``contextvars`` variable, set per request.

A context variable follows the request through every ``await`` and into the tasks it starts,
and never into another request's code, which a module global or a thread-local would not
guarantee under asyncio.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantScope:
    """What the running code may see: one tenant's rows, or (``system``) every tenant's."""

    tenant_id: UUID | None
    system_reason: str | None = None

    @property
    def is_system(self) -> bool:
        """True inside ``system_context``: the ORM filter steps aside, on purpose."""
        return self.system_reason is not None


_scope: ContextVar[TenantScope | None] = ContextVar("shelfwise_tenant_scope", default=None)


class NoTenantError(RuntimeError):
    """Tenant-scoped data was touched with no tenant in context: a bug, never a silent leak."""

    def __init__(self) -> None:
        super().__init__(
            "no tenant in context: run this inside tenant_context(...) (requests get one from "
            "their token) or, for operator work, system_context(reason)"
        )


def current_scope() -> TenantScope | None:
    """The scope the running code is in, or ``None`` outside any."""
    return _scope.get()


def current_tenant_id() -> UUID:
    """The id of the tenant the running code acts for. Raises ``NoTenantError`` if none."""
    scope = _scope.get()
    if scope is None or scope.tenant_id is None:
        raise NoTenantError()
    return scope.tenant_id


@contextmanager
def tenant_context(tenant_id: UUID) -> Iterator[None]:
    """Act for ``tenant_id`` inside the block (and the tasks started from it)."""
    token = _scope.set(TenantScope(tenant_id))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def system_context(reason: str) -> Iterator[None]:
    """Step past the ORM tenant filter inside the block, for work that spans tenants.

    The only way around wall 1, and it leaves a trace: every entry is logged with its reason.
    It does not lift PostgreSQL's row-level security; operator commands connect as the owner.
    """
    logger.warning("system context entered: %s", reason)
    token = _scope.set(TenantScope(None, system_reason=reason))
    try:
        yield
    finally:
        _scope.reset(token)
