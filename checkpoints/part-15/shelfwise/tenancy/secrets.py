"""Per-tenant secrets, encrypted at rest with keys that can be rotated without downtime.

``cryptography``'s MultiFernet does the cryptography (AES-128-CBC with an HMAC-SHA256, the
Fernet format): it encrypts with the first key and decrypts with any of them. Rotation is
therefore three steps, none of which stops the service: put a new key first, re-encrypt every
stored secret with it (``rotate_all``), then drop the old key.

Each plaintext is bound to its row: the tenant's id and the secret's name are encrypted with
the value and checked on the way out, so a ciphertext copied into another tenant's row does
not decrypt there. Values travel as ``SecretStr``, which never prints.
"""

from collections.abc import Sequence
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.platform.errors import InvalidInputError
from shelfwise.tenancy.context import current_tenant_id, system_context
from shelfwise.tenancy.models import TenantSecret


class SecretsUnavailableError(InvalidInputError):
    """No encryption key is configured: set SHELFWISE_SECRETS_KEYS."""

    code = "secrets_unavailable"
    title = "Secrets unavailable"


class SecretMismatchError(Exception):
    """A ciphertext did not decrypt as the secret of this tenant and name."""


def new_key() -> str:
    """A fresh key for ``SHELFWISE_SECRETS_KEYS``."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts and decrypts secrets with the configured keys, newest first."""

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        self._fernet = (
            MultiFernet([Fernet(key.get_secret_value()) for key in keys]) if keys else None
        )

    def seal(self, tenant_id: UUID, name: str, value: SecretStr) -> str:
        """The ciphertext of ``value``, bound to this tenant and name."""
        plaintext = f"{_binding(tenant_id, name)}{value.get_secret_value()}"
        return self._keys().encrypt(plaintext.encode()).decode()

    def open(self, tenant_id: UUID, name: str, ciphertext: str) -> SecretStr:
        """The value sealed in ``ciphertext``, if it belongs to this tenant and name."""
        try:
            plaintext = self._keys().decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretMismatchError(f"secret {name!r}: no key decrypts it") from None
        binding = _binding(tenant_id, name)
        if not plaintext.startswith(binding):
            raise SecretMismatchError(f"secret {name!r}: sealed for another tenant or name")
        return SecretStr(plaintext.removeprefix(binding))

    def ensure_available(self) -> None:
        """Raise ``SecretsUnavailableError`` now, before anyone types a secret in vain."""
        self._keys()

    def rotate(self, ciphertext: str) -> str:
        """``ciphertext`` re-encrypted with the newest key."""
        return self._keys().rotate(ciphertext.encode()).decode()

    def _keys(self) -> MultiFernet:
        if self._fernet is None:
            raise SecretsUnavailableError(
                "No encryption key is configured: set SHELFWISE_SECRETS_KEYS."
            )
        return self._fernet


def _binding(tenant_id: UUID, name: str) -> str:
    return f"{tenant_id}/{name}\n"


class TenantSecrets:
    """The current tenant's secrets, read and written through the caller's session."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box

    async def set(self, session: AsyncSession, name: str, value: SecretStr) -> None:
        """Store ``value`` as the current tenant's secret ``name``, encrypted, and commit."""
        tenant_id = current_tenant_id()
        ciphertext = self._box.seal(tenant_id, name, value)
        # merge: the row with this primary key is updated if it exists, else inserted.
        await session.merge(TenantSecret(tenant_id=tenant_id, name=name, ciphertext=ciphertext))
        await session.commit()

    async def get(self, session: AsyncSession, name: str) -> SecretStr | None:
        """The current tenant's secret ``name``, decrypted; ``None`` if there is none."""
        ciphertext = await session.scalar(
            select(TenantSecret.ciphertext).where(TenantSecret.name == name)
        )
        return None if ciphertext is None else self._box.open(current_tenant_id(), name, ciphertext)

    async def names(self, session: AsyncSession) -> list[str]:
        """The names of the current tenant's secrets (never their values)."""
        return list(await session.scalars(select(TenantSecret.name).order_by(TenantSecret.name)))

    async def rotate_all(self, session: AsyncSession) -> int:
        """Re-encrypt every tenant's secrets with the newest key and commit; returns how many.

        Safe while the service runs: until a row is rewritten, its old key still decrypts it.
        """
        with system_context("operator: re-encrypt every secret with the newest key"):
            rows = (await session.scalars(select(TenantSecret))).all()
            for row in rows:
                row.ciphertext = self._box.rotate(row.ciphertext)
            await session.commit()
        return len(rows)
