"""Tenants' secrets: encrypted at rest, bound to their row, rotated without downtime, and
never written to a log."""

import logging

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.tenancy.context import system_context, tenant_context
from shelfwise.tenancy.models import TenantSecret
from shelfwise.tenancy.secrets import (
    SecretBox,
    SecretMismatchError,
    SecretsUnavailableError,
    TenantSecrets,
)
from tests.factories import Tenants

SIGNING_KEY = SecretStr("whsec_distributor-signing-key-42")
OLD, NEW = SecretStr(Fernet.generate_key().decode()), SecretStr(Fernet.generate_key().decode())


async def stored_ciphertexts(session: AsyncSession) -> list[str]:
    with system_context("tests: read the raw rows"):
        return list(await session.scalars(select(TenantSecret.ciphertext)))


async def test_a_secret_is_stored_encrypted_and_read_back(
    session: AsyncSession, tenants: Tenants
) -> None:
    secrets = TenantSecrets(SecretBox([NEW]))

    await secrets.set(session, "webhook_signing_key", SIGNING_KEY)

    value = await secrets.get(session, "webhook_signing_key")
    assert value is not None and value.get_secret_value() == SIGNING_KEY.get_secret_value()
    [ciphertext] = await stored_ciphertexts(session)
    assert SIGNING_KEY.get_secret_value() not in ciphertext
    with tenant_context(tenants.b.id):
        assert await secrets.get(session, "webhook_signing_key") is None
        assert await secrets.names(session) == []


def test_a_ciphertext_only_opens_as_the_secret_it_was_sealed_as(tenants: Tenants) -> None:
    box = SecretBox([NEW])
    sealed = box.seal(tenants.a.id, "webhook_signing_key", SIGNING_KEY)

    with pytest.raises(SecretMismatchError, match="another tenant or name"):
        box.open(tenants.b.id, "webhook_signing_key", sealed)
    with pytest.raises(SecretMismatchError, match="another tenant or name"):
        box.open(tenants.a.id, "erp_password", sealed)


async def test_rotation_keeps_every_secret_readable_at_every_step(
    session: AsyncSession, tenants: Tenants
) -> None:
    await TenantSecrets(SecretBox([OLD])).set(session, "webhook_signing_key", SIGNING_KEY)

    # Step 1: the new key goes first; the old one still decrypts what it encrypted.
    both = TenantSecrets(SecretBox([NEW, OLD]))
    assert await both.get(session, "webhook_signing_key") == SIGNING_KEY
    # Step 2: re-encrypt with the new key, while the service keeps reading.
    assert await both.rotate_all(session) == 1
    # Step 3: retire the old key.
    new_only = TenantSecrets(SecretBox([NEW]))
    assert await new_only.get(session, "webhook_signing_key") == SIGNING_KEY
    with pytest.raises(SecretMismatchError, match="no key decrypts it"):
        await TenantSecrets(SecretBox([OLD])).get(session, "webhook_signing_key")


async def test_without_keys_secrets_are_refused_not_stored_in_the_clear(
    session: AsyncSession, tenants: Tenants
) -> None:
    with pytest.raises(SecretsUnavailableError, match="SHELFWISE_SECRETS_KEYS"):
        await TenantSecrets(SecretBox([])).set(session, "webhook_signing_key", SIGNING_KEY)

    assert await stored_ciphertexts(session) == []


async def test_a_secret_never_reaches_the_logs(
    session: AsyncSession,
    tenants: Tenants,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger…
    # …SQLAlchemy's too (it sets its own to WARNING): statements, parameters and rows.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    secrets = TenantSecrets(SecretBox([NEW, OLD]))

    await secrets.set(session, "webhook_signing_key", SIGNING_KEY)
    value = await secrets.get(session, "webhook_signing_key")
    await secrets.rotate_all(session)
    logging.getLogger("tests").info("read %s, then %r", value, value)

    assert "webhook_signing_key" in caplog.text  # the statements were logged…
    assert SIGNING_KEY.get_secret_value() not in caplog.text  # …the secret was not
