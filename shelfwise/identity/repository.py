"""SQLAlchemy adapter for the identity ports."""

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.identity.models import User
from shelfwise.identity.ports import Account
from shelfwise.identity.tokens import Principal
from shelfwise.platform.db import set_transaction_setting
from shelfwise.tenancy.models import Tenant, TenantStatus
from shelfwise.tenancy.row_security import CURRENT_TENANT_SQL, TENANT_SETTING, row_level_security

if TYPE_CHECKING:
    from shelfwise.identity.ports import Accounts

# Logging in reads one user by email before any tenant is known; this setting lets exactly
# that row past the users table's policy.
LOGIN_EMAIL_SETTING = "app.login_email"


def login_policies() -> list[str]:
    """Wall 2 for users: the current tenant's, plus the one being logged in as."""
    login_email = f"NULLIF(current_setting('{LOGIN_EMAIL_SETTING}', true), '')"
    return row_level_security(
        "users",
        using=f"tenant_id = {CURRENT_TENANT_SQL} OR email = {login_email}",
        with_check=f"tenant_id = {CURRENT_TENANT_SQL}",
    )


class SqlAccounts:
    """Accounts read through one ``AsyncSession``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find_by_email(self, email: str) -> Account | None:
        await set_transaction_setting(self._session, LOGIN_EMAIL_SETTING, email)
        user = await self._session.scalar(select(User).where(User.email == email))
        if user is None:
            return None
        # The tenant's row is visible to its own tenant only, so say which one this is.
        await set_transaction_setting(self._session, TENANT_SETTING, str(user.tenant_id))
        return await self.find(Principal(user.id, user.tenant_id))

    async def find(self, principal: Principal) -> Account | None:
        row = (
            await self._session.execute(
                select(User.password_hash, Tenant.status)
                .join(Tenant, Tenant.id == User.tenant_id)
                .where(User.id == principal.user_id, User.tenant_id == principal.tenant_id)
            )
        ).one_or_none()
        if row is None:
            return None
        password_hash, status = row
        return Account(principal, password_hash, tenant_active=status is TenantStatus.ACTIVE)


if TYPE_CHECKING:
    # mypy proves the adapter satisfies the port; nothing runs at runtime.
    def _conforms(session: AsyncSession) -> Accounts:
        return SqlAccounts(session)
