"""Feature flags: sticky rollout by tenant, the kill switch, and denials that beat the rollout."""

import itertools
from uuid import NAMESPACE_DNS, UUID, uuid5

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.flags import (
    BUCKETS,
    FeatureFlags,
    FlagState,
    UnknownFlagError,
    bucket,
    decide,
    save_flag,
    set_denial,
)
from tests.factories import Tenants

# 200 tenants, the series' number, with ids that are the same on every run.
TENANTS = [uuid5(NAMESPACE_DNS, f"tenant-{number}.example") for number in range(200)]
FLAG = "catalog.isbn_search"


def enabled_at(percent: int, flag: str = FLAG) -> set[UUID]:
    state = FlagState(rollout_percent=percent, killed=False)
    return {tenant for tenant in TENANTS if decide(flag, state, tenant, denied=False).enabled}


def test_a_tenants_bucket_is_fixed_and_in_range() -> None:
    places = [bucket(FLAG, tenant) for tenant in TENANTS]

    assert places == [bucket(FLAG, tenant) for tenant in TENANTS]
    assert all(0 <= place < BUCKETS for place in places)


def test_raising_the_rollout_only_adds_tenants() -> None:
    steps = [enabled_at(percent) for percent in range(0, 101, 5)]

    assert steps[0] == set() and steps[-1] == set(TENANTS)
    for smaller, larger in itertools.pairwise(steps):
        assert smaller <= larger


def test_a_rollout_reaches_about_its_share_of_tenants() -> None:
    # 200 draws at 50 %: the standard deviation is about 7 tenants; allow three of them.
    assert 79 <= len(enabled_at(50)) <= 121
    assert 20 <= len(enabled_at(25)) <= 80


def test_each_flag_picks_its_own_first_tenants() -> None:
    assert enabled_at(10, "flag.one") != enabled_at(10, "flag.two")


@pytest.mark.parametrize(
    ("state", "denied", "enabled", "reason"),
    [
        (None, False, False, "no such flag"),
        (FlagState(100, killed=True), False, False, "killed"),
        (FlagState(100, killed=False), True, False, "denied for this tenant"),
        (FlagState(100, killed=False), False, True, "in the rollout"),
        (FlagState(0, killed=False), False, False, "outside the rollout"),
    ],
)
def test_the_kill_switch_and_a_denial_beat_the_rollout(
    state: FlagState | None, denied: bool, enabled: bool, reason: str
) -> None:
    decision = decide(FLAG, state, TENANTS[0], denied)

    assert decision.enabled is enabled
    assert decision.reason.startswith(reason)


async def test_a_denied_tenant_stays_out_of_a_full_rollout(
    session: AsyncSession, tenants: Tenants
) -> None:
    await save_flag(session, FLAG, rollout_percent=100)
    await set_denial(session, FLAG, "contract forbids beta features")  # tenant A
    flags = FeatureFlags(ttl_seconds=30)

    assert not await flags.is_enabled(session, FLAG)
    with tenant_context(tenants.b.id):
        assert await flags.is_enabled(session, FLAG)


async def test_killing_a_flag_applies_at_once_where_invalidated(
    session: AsyncSession, tenants: Tenants
) -> None:
    flags = FeatureFlags(ttl_seconds=30)
    await save_flag(session, FLAG, rollout_percent=100)
    assert await flags.is_enabled(session, FLAG)

    await save_flag(session, FLAG, killed=True)
    assert await flags.is_enabled(session, FLAG)  # still the copy this process read
    flags.invalidate()

    assert (await flags.decide(session, FLAG)).reason == "killed"


async def test_a_denial_of_an_unknown_flag_is_refused(
    session: AsyncSession, tenants: Tenants
) -> None:
    with pytest.raises(UnknownFlagError):
        await set_denial(session, "no.such.flag", "why not")
