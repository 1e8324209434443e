"""Tenants, the mixin that makes a table hold one tenant's rows, and what each tenant
configures: settings, feature flags and secrets (part 10)."""

from enum import StrEnum
from uuid import UUID, uuid4

from pydantic import JsonValue
from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.platform.db import Base

SLUG_LENGTH = 63  # a DNS label: a tenant's slug can name its subdomain later
TENANT_NAME_LENGTH = 200
SETTING_KEY_LENGTH = 100  # "orders.bulk_discount_tiers", a flag's or a secret's name
DESCRIPTION_LENGTH = 300


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


class TenantSetting(TenantScoped, Base):
    """One tenant's value for one setting, overriding the environment's and the default."""

    __tablename__ = "tenant_settings"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(SETTING_KEY_LENGTH), primary_key=True)
    value: Mapped[JsonValue] = mapped_column(JSON)


class FeatureFlag(Base):
    """A feature that can be rolled out to a share of tenants, or switched off for all."""

    __tablename__ = "feature_flags"
    __table_args__ = (
        CheckConstraint("rollout_percent BETWEEN 0 AND 100", name="rollout_percent_range"),
    )

    name: Mapped[str] = mapped_column(String(SETTING_KEY_LENGTH), primary_key=True)
    description: Mapped[str] = mapped_column(String(DESCRIPTION_LENGTH), default="")
    rollout_percent: Mapped[int] = mapped_column(default=0)
    # The kill switch: off for every tenant, whatever the rollout says.
    killed: Mapped[bool] = mapped_column(default=False)


class FlagDenial(TenantScoped, Base):
    """A tenant that must not get a flag, whatever the rollout (a contract without betas)."""

    __tablename__ = "feature_flag_denials"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    flag: Mapped[str] = mapped_column(ForeignKey("feature_flags.name"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(DESCRIPTION_LENGTH))


class TenantSecret(TenantScoped, Base):
    """A tenant's secret (a webhook signing key, say), stored only encrypted."""

    __tablename__ = "tenant_secrets"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(SETTING_KEY_LENGTH), primary_key=True)
    # A Fernet token (base64 text), encrypted with the newest key when written.
    ciphertext: Mapped[str] = mapped_column(Text)
