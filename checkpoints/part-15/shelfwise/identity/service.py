"""Logging in and checking tokens."""

import asyncio
from dataclasses import dataclass
from functools import cache

from pwdlib import PasswordHash

from shelfwise.identity.errors import (
    InvalidCredentialsError,
    TenantSuspendedError,
    TokenRejectedError,
)
from shelfwise.identity.ports import Account, Accounts
from shelfwise.identity.tokens import InvalidTokenError, Principal, TokenSigner

# pwdlib's recommended hasher: argon2id with the parameters of RFC 9106's second option.
PASSWORDS = PasswordHash.recommended()


@dataclass(frozen=True)
class AccessToken:
    """What a successful login returns."""

    token: str
    expires_in_seconds: int


def normalize_email(email: str) -> str:
    """The form emails are stored and looked up in."""
    return email.strip().lower()


async def hash_password(password: str) -> str:
    """An argon2 hash of ``password``, computed off the event loop (it takes ~0.1 s of CPU)."""
    return await asyncio.to_thread(PASSWORDS.hash, password)


@cache
def _hash_of_nothing() -> str:
    # Checked against when the email is unknown, so that answer takes as long as a wrong
    # password: timing does not tell an attacker which emails have accounts.
    return PASSWORDS.hash("not any user's password")


class AuthService:
    """Turns credentials into tokens, and tokens back into a principal still allowed in."""

    def __init__(self, accounts: Accounts, signer: TokenSigner) -> None:
        self._accounts = accounts
        self._signer = signer

    async def log_in(self, email: str, password: str) -> AccessToken:
        """A token for the user with these credentials, if their tenant is active."""
        account = await self._accounts.find_by_email(normalize_email(email))
        known_hash = account.password_hash if account else _hash_of_nothing()
        matches = await asyncio.to_thread(PASSWORDS.verify, password, known_hash)
        if account is None or not matches:
            raise InvalidCredentialsError()
        self._ensure_active(account)
        return AccessToken(
            token=self._signer.issue(account.principal),
            expires_in_seconds=int(self._signer.lifetime.total_seconds()),
        )

    @staticmethod
    def verify(signer: TokenSigner, token: str) -> Principal:
        """Who ``token`` speaks for, if its signature and claims hold. Static: checking a token
        reads no database, so it needs no service with a session."""
        try:
            return signer.verify(token)
        except InvalidTokenError as error:
            raise TokenRejectedError("The bearer token is not valid; log in again.") from error

    async def ensure_allowed(self, principal: Principal) -> None:
        """Refuse a valid token whose user is gone or whose tenant is suspended since."""
        account = await self._accounts.find(principal)
        if account is None:
            raise TokenRejectedError("The token's user no longer exists; log in again.")
        self._ensure_active(account)

    @staticmethod
    def _ensure_active(account: Account) -> None:
        if not account.tenant_active:
            raise TenantSuspendedError()
