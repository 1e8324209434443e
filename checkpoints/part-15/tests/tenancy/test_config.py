"""Per-tenant settings: tenant → environment → default, with provenance, applied without a
restart (at once where changed, within the TTL elsewhere)."""

from decimal import Decimal

import pytest
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.orders.config import BULK_DISCOUNT
from shelfwise.orders.discounts import BULK_DISCOUNT_TIERS, DiscountTier
from shelfwise.platform.settings import SettingsError
from shelfwise.tenancy.config import InvalidSettingError, TenantConfig, UnknownSettingError
from shelfwise.tenancy.context import tenant_context
from tests.clocks import Clock
from tests.factories import Tenants

NEGOTIATED: JsonValue = [[20, "7.5"]]  # 7.5 % from 20 copies, as JSON
TTL = 30.0


def config(clock: Clock | None = None) -> TenantConfig:
    """A resolver with no environment layer, as one process would have it."""
    return TenantConfig({}, TTL, clock or Clock())


async def test_without_overrides_the_default_applies(
    session: AsyncSession, tenants: Tenants
) -> None:
    resolved = await config().resolve(session, BULK_DISCOUNT)

    assert (resolved.value, resolved.source) == (BULK_DISCOUNT_TIERS, "default")


async def test_the_environment_beats_the_default_and_the_tenant_beats_both(
    session: AsyncSession, tenants: Tenants
) -> None:
    environment: dict[str, JsonValue] = {"orders.bulk_discount_tiers": [[100, "12"]]}
    resolver = TenantConfig(environment, TTL)

    await resolver.set(session, "orders.bulk_discount_tiers", NEGOTIATED)  # as tenant A

    mine = await resolver.resolve(session, BULK_DISCOUNT)
    with tenant_context(tenants.b.id):
        theirs = await resolver.resolve(session, BULK_DISCOUNT)
    assert (mine.value, mine.source) == ((DiscountTier(20, Decimal("7.5")),), "tenant")
    assert (theirs.value, theirs.source) == ((DiscountTier(100, Decimal(12)),), "environment")


async def test_unset_falls_back_to_the_next_layer(session: AsyncSession, tenants: Tenants) -> None:
    resolver = config()
    await resolver.set(session, "orders.bulk_discount_tiers", NEGOTIATED)

    resolved = await resolver.unset(session, "orders.bulk_discount_tiers")

    assert resolved.source == "default"


async def test_a_change_from_another_process_applies_once_the_ttl_has_passed(
    session: AsyncSession, tenants: Tenants
) -> None:
    clock = Clock()
    this_process, other_process = config(clock), config()
    assert (await this_process.resolve(session, BULK_DISCOUNT)).source == "default"  # now cached

    await other_process.set(session, "orders.bulk_discount_tiers", NEGOTIATED)

    clock.now = TTL - 1
    assert (await this_process.resolve(session, BULK_DISCOUNT)).source == "default"
    clock.now = TTL + 1
    assert (await this_process.resolve(session, BULK_DISCOUNT)).source == "tenant"


async def test_invalidation_applies_a_change_at_once(
    session: AsyncSession, tenants: Tenants
) -> None:
    this_process, other_process = config(), config()
    await this_process.resolve(session, BULK_DISCOUNT)
    await other_process.set(session, "orders.bulk_discount_tiers", NEGOTIATED)

    this_process.invalidate(tenants.a.id)

    assert (await this_process.resolve(session, BULK_DISCOUNT)).source == "tenant"


@pytest.mark.parametrize(
    "value",
    [
        [[20, "60"]],  # more than 50 %
        [[50, "5"], [10, "10"]],  # not ascending
        [[0, "5"]],  # no copies
        [[1, "1"]] * 6,  # too many tiers
        [[10, "5.555"]],  # finer than hundredths
        "five percent",
    ],
)
async def test_a_value_out_of_bounds_is_refused_and_stores_nothing(
    session: AsyncSession, tenants: Tenants, value: JsonValue
) -> None:
    resolver = config()

    with pytest.raises(InvalidSettingError, match=r"orders\.bulk_discount_tiers"):
        await resolver.set(session, "orders.bulk_discount_tiers", value)

    assert (await resolver.resolve(session, BULK_DISCOUNT)).source == "default"


async def test_an_unknown_key_is_refused(session: AsyncSession, tenants: Tenants) -> None:
    with pytest.raises(UnknownSettingError, match=r"orders\.bulk_discount_tiers"):
        await config().set(session, "orders.free_shipping", True)


def test_an_environment_value_is_checked_when_the_app_starts() -> None:
    tiers = r"SHELFWISE_TENANT_DEFAULTS: orders\.bulk_discount_tiers"
    with pytest.raises(SettingsError, match=tiers):
        TenantConfig({"orders.bulk_discount_tiers": [[1, "99"]]}, TTL)
    with pytest.raises(SettingsError, match="SHELFWISE_TENANT_DEFAULTS: nope"):
        TenantConfig({"nope": 1}, TTL)
