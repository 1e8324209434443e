"""What the identity service needs from storage."""

from dataclasses import dataclass
from typing import Protocol

from shelfwise.identity.tokens import Principal


@dataclass(frozen=True)
class Account:
    """A user as logging in sees it: who, for which tenant, the hash, and the tenant's state."""

    principal: Principal
    password_hash: str
    tenant_active: bool


class Accounts(Protocol):
    """Users and their tenants' status."""

    async def find_by_email(self, email: str) -> Account | None:
        """The account with this (lowercased) email, whatever its tenant."""
        ...

    async def find(self, principal: Principal) -> Account | None:
        """The account a token speaks for, if that user still exists in that tenant."""
        ...
