"""Tenants, and the mixin that makes a table hold one tenant's rows."""

from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.platform.db import Base

SLUG_LENGTH = 63  # a DNS label: a tenant's slug can name its subdomain later
TENANT_NAME_LENGTH = 200


def _stored_as_values(enum: type[StrEnum], length: int) -> Enum:
    # A plain string column holding the value ("active"): new members need no ALTER TYPE.
    return Enum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Plan(StrEnum):
    """What a tenant pays for; limits and features key off it in later parts."""

    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class TenantStatus(StrEnum):
    """Whether a tenant's users may work. Suspended tenants keep their data, not their access."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(Base):
    """One organisation (bookstore, publisher, distributor) sharing the deployment."""

    __tablename__ = "tenants"

    # A UUID, not a counter: tenant ids appear in tokens, logs and support tickets, where a
    # small integer invites guessing neighbours, and they stay unique when data is merged.
    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    slug: Mapped[str] = mapped_column(String(SLUG_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(TENANT_NAME_LENGTH))
    plan: Mapped[Plan] = mapped_column(_stored_as_values(Plan, 20))
    status: Mapped[TenantStatus] = mapped_column(_stored_as_values(TenantStatus, 20))


class TenantScoped:
    """Mixin for a table whose every row belongs to one tenant.

    Both walls key off it: the ORM filter adds ``tenant_id = <current tenant>`` to every query
    on a subclass, and PostgreSQL's row-level security policy is installed on its table.
    """

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"))
