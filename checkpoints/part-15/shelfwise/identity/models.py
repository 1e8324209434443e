"""Users: who may log in, and for which tenant."""

from uuid import UUID

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.platform.db import Base

# RFC 5321 caps a forward path at 256 octets, so an address at 254 characters.
EMAIL_LENGTH = 254


class User(Base):
    """A person who logs in, for one tenant.

    Not ``TenantScoped``: logging in finds the user by email before any tenant is known, so
    the ORM filter cannot apply. Every query here names the tenant itself; on PostgreSQL a
    row-level policy (see ``login_policies``) still keeps other tenants' users out of sight.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    # Stored lowercased; one address is one user across the deployment.
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH), unique=True)
    # An argon2 hash in PHC form ($argon2id$v=19$m=...), never the password.
    password_hash: Mapped[str] = mapped_column(String(255))
