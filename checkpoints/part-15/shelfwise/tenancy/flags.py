"""Feature flags: a sticky percentage rollout by tenant, a kill switch, per-tenant denials.

A tenant's place in a rollout is a bucket from 0 to 9,999 computed from the flag's name and
the tenant's id with murmur3: stable across processes, restarts and Python versions (unlike
``hash()``), and different for each flag, so the same tenants are not always the first to get
every beta. A tenant is in when its bucket is below ``rollout_percent * 100``. Raising the
percentage only adds tenants; none that had the feature loses it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import mmh3
from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.platform.errors import NotFoundError
from shelfwise.tenancy.context import current_tenant_id
from shelfwise.tenancy.models import FeatureFlag, FlagDenial

# Rollouts are set in whole percent; 10,000 buckets leave room for finer steps later.
BUCKETS = 10_000
CACHED_TENANTS = 10_000


def bucket(flag: str, tenant_id: UUID) -> int:
    """The tenant's fixed place in ``flag``'s rollout, from 0 to ``BUCKETS - 1``."""
    return mmh3.hash(f"{flag}:{tenant_id}", signed=False) % BUCKETS


@dataclass(frozen=True)
class FlagState:
    """A flag as stored: how far it is rolled out, and whether it is killed."""

    rollout_percent: int
    killed: bool


@dataclass(frozen=True)
class Decision:
    """Whether a tenant gets a flag, and why."""

    enabled: bool
    reason: str


def decide(flag: str, state: FlagState | None, tenant_id: UUID, denied: bool) -> Decision:
    """The rules, in the order they win: unknown, killed, denied, then the rollout."""
    if state is None:
        return Decision(False, "no such flag")
    if state.killed:
        return Decision(False, "killed")
    if denied:
        return Decision(False, "denied for this tenant")
    place, limit = bucket(flag, tenant_id), state.rollout_percent * BUCKETS // 100
    where = f"bucket {place}, {state.rollout_percent} % admits buckets below {limit}"
    if place < limit:
        return Decision(True, f"in the rollout ({where})")
    return Decision(False, f"outside the rollout ({where})")


class FeatureFlags:
    """Decides flags for the current tenant, from a short-lived copy of the flag tables.

    One per process; it reads through the caller's session, like ``TenantConfig``.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._states: TTLCache[str, dict[str, FlagState]] = TTLCache(1, ttl_seconds, clock)
        self._denials: TTLCache[UUID, frozenset[str]] = TTLCache(CACHED_TENANTS, ttl_seconds, clock)

    async def is_enabled(self, session: AsyncSession, flag: str) -> bool:
        """Whether the current tenant gets ``flag``."""
        return (await self.decide(session, flag)).enabled

    async def decide(self, session: AsyncSession, flag: str) -> Decision:
        """Whether the current tenant gets ``flag``, and why."""
        tenant_id = current_tenant_id()
        states = await self._flag_states(session)
        denied = flag in await self._tenant_denials(session, tenant_id)
        return decide(flag, states.get(flag), tenant_id, denied)

    def invalidate(self) -> None:
        """Forget what this process read; the next decision reads the tables again."""
        self._states.clear()
        self._denials.clear()

    async def _flag_states(self, session: AsyncSession) -> dict[str, FlagState]:
        states = self._states.get("all")
        if states is None:
            rows = await session.execute(
                select(FeatureFlag.name, FeatureFlag.rollout_percent, FeatureFlag.killed)
            )
            states = {name: FlagState(percent, killed) for name, percent, killed in rows}
            self._states["all"] = states
        return states

    async def _tenant_denials(self, session: AsyncSession, tenant_id: UUID) -> frozenset[str]:
        denials = self._denials.get(tenant_id)
        if denials is None:
            denials = frozenset(await session.scalars(select(FlagDenial.flag)))
            self._denials[tenant_id] = denials
        return denials


class UnknownFlagError(NotFoundError):
    """No feature flag has this name."""

    code = "unknown_flag"
    title = "Unknown flag"


async def save_flag(
    session: AsyncSession,
    name: str,
    *,
    rollout_percent: int | None = None,
    killed: bool | None = None,
    description: str | None = None,
) -> FeatureFlag:
    """Create or change a flag (operator work: flags are global, not a tenant's)."""
    flag = await session.get(FeatureFlag, name) or FeatureFlag(name=name)
    if rollout_percent is not None:
        flag.rollout_percent = rollout_percent
    if killed is not None:
        flag.killed = killed
    if description is not None:
        flag.description = description
    session.add(flag)
    await session.commit()
    return flag


async def set_denial(session: AsyncSession, flag: str, reason: str | None) -> None:
    """Deny ``flag`` to the current tenant (with a reason), or lift the denial (``None``)."""
    if await session.get(FeatureFlag, flag) is None:
        raise UnknownFlagError(f"There is no flag {flag!r}.")
    denial = await session.get(FlagDenial, (current_tenant_id(), flag))
    if reason is None and denial is not None:
        await session.delete(denial)
    elif reason is not None and denial is None:
        session.add(FlagDenial(flag=flag, reason=reason))
    elif denial is not None and reason is not None:
        denial.reason = reason
    await session.commit()
