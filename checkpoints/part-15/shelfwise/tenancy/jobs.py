"""Jobs that act for a tenant: sent with the tenant of the code that sends them, run in that
tenant's context, and never run without one.

The tenant travels as a label. The worker runs the job inside ``tenant_context`` for that
tenant, so part 9's walls hold in the worker as in a request. A job whose message names no
tenant, or a malformed one, fails closed before its code runs: it becomes a dead letter at once
and is never run "for nobody". The ambient context of the process running the job is never
trusted (an in-process broker runs jobs in the sender's context).
"""

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import ParamSpec, TypeVar
from uuid import UUID

from shelfwise.platform.jobs import PermanentJobError, current_job_labels
from shelfwise.platform.logs import bind_request_fields
from shelfwise.tenancy.context import current_scope, tenant_context

TENANT_ID = "tenant_id"

P = ParamSpec("P")
R = TypeVar("R")


class MissingTenantError(PermanentJobError):
    """A tenant's job arrived without a valid tenant: it is not run."""


def tenant_label() -> Mapping[str, str]:
    """The label that sends the current tenant with a job (none outside a tenant context)."""
    scope = current_scope()
    if scope is None or scope.tenant_id is None:
        return {}
    return {TENANT_ID: str(scope.tenant_id)}


def tenant_job(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run ``function`` for the tenant its message names, or not at all."""

    @functools.wraps(function)
    async def for_its_tenant(*args: P.args, **kwargs: P.kwargs) -> R:
        tenant_id = _tenant_of(current_job_labels() or {})
        with tenant_context(tenant_id):
            bind_request_fields(tenant_id=str(tenant_id))
            return await function(*args, **kwargs)

    return for_its_tenant


def _tenant_of(labels: Mapping[str, str]) -> UUID:
    raw = labels.get(TENANT_ID)
    if raw is None:
        raise MissingTenantError("the job's message names no tenant")
    try:
        tenant_id = UUID(raw)
    except ValueError:
        raise MissingTenantError("the job's tenant is not a UUID") from None
    if str(tenant_id) != raw:
        raise MissingTenantError("the job's tenant is not a UUID in canonical form")
    return tenant_id
