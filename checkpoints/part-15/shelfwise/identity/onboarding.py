"""Operator work: opening a tenant with its first user, suspending and reactivating it; and
what plan a tenant is on."""

from typing import ClassVar
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.identity.models import User
from shelfwise.identity.service import hash_password, normalize_email
from shelfwise.platform.errors import ConflictError, NotFoundError
from shelfwise.tenancy.context import system_context
from shelfwise.tenancy.models import Plan, Tenant, TenantStatus


class TenantExistsError(ConflictError):
    """A tenant with this slug, or a user with this email, already exists."""

    code: ClassVar[str] = "tenant_exists"
    title: ClassVar[str] = "Tenant exists"


class UnknownTenantError(NotFoundError):
    """No tenant has this slug."""

    code: ClassVar[str] = "unknown_tenant"
    title: ClassVar[str] = "Unknown tenant"


async def open_tenant(
    session: AsyncSession, *, slug: str, name: str, plan: Plan, email: str, password: str
) -> Tenant:
    """Create a tenant and its first user, in one transaction."""
    password_hash = await hash_password(password)
    with system_context(f"operator: open tenant {slug!r}"):
        tenant = Tenant(slug=slug, name=name, plan=plan, status=TenantStatus.ACTIVE)
        session.add(tenant)
        try:
            await session.flush()
            session.add(
                User(tenant_id=tenant.id, email=normalize_email(email), password_hash=password_hash)
            )
            await session.commit()
        except IntegrityError as error:
            await session.rollback()
            raise TenantExistsError(
                f"A tenant {slug!r} or a user {email!r} already exists."
            ) from error
    return tenant


async def set_tenant_status(session: AsyncSession, slug: str, status: TenantStatus) -> Tenant:
    """Suspend or reactivate a tenant; its users' tokens follow at their next request."""
    with system_context(f"operator: set tenant {slug!r} {status.value}"):
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise UnknownTenantError(f"There is no tenant {slug!r}.")
        tenant.status = status
        await session.commit()
    return tenant


async def plan_of(session: AsyncSession, tenant_id: UUID) -> Plan | None:
    """``tenant_id``'s plan; ``None`` if there is no such tenant."""
    plan: Plan | None = await session.scalar(select(Tenant.plan).where(Tenant.id == tenant_id))
    return plan
