"""What each plan may use, what a tenant's contract overrides, and the lookup that combines
them for the current request."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

from cachetools import LRUCache
from pydantic import Field, StrictInt
from sqlalchemy import select

from shelfwise.platform.db import Database
from shelfwise.platform.errors import DomainError
from shelfwise.platform.rate_limit import ConcurrencyCaps, Quota, RateLimiter
from shelfwise.tenancy.config import CACHED_TENANTS, SettingSpec, TenantConfig, tenant_setting
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.models import Plan, Tenant

logger = logging.getLogger(__name__)

# The longest a tenant's first request in a process waits for its policy (a read takes ms).
POLICY_WAIT_SECONDS = 0.25


@dataclass(frozen=True)
class PlanLimits:
    """What one plan may use: quota units per minute, and requests in flight per process."""

    requests_per_minute: int
    concurrent_requests: int


# The series' tiers are 1,000 and 10,000 requests a minute; enterprise contracts start at
# 100,000 and are usually set per tenant. The caps stay below a process's default 15 slots.
PLAN_LIMITS = {
    Plan.FREE: PlanLimits(requests_per_minute=1_000, concurrent_requests=2),
    Plan.PRO: PlanLimits(requests_per_minute=10_000, concurrent_requests=6),
    Plan.ENTERPRISE: PlanLimits(requests_per_minute=100_000, concurrent_requests=10),
}

REQUESTS_PER_MINUTE: SettingSpec[int | None] = tenant_setting(
    "limits.requests_per_minute",
    Annotated[StrictInt, Field(ge=1, le=10_000_000)] | None,
    None,
    "quota units a minute (most requests cost 1), across every process (null: the plan's)",
)
CONCURRENT_REQUESTS: SettingSpec[int | None] = tenant_setting(
    "limits.concurrent_requests",
    Annotated[StrictInt, Field(ge=1, le=10_000)] | None,
    None,
    "requests that may run at once in each API process (null: the plan's)",
)

Outcome = Literal["allowed", "rate_limited", "concurrency_limited"]


@dataclass(frozen=True)
class TenantPolicy:
    """One tenant's limits, with its plan's values where its contract sets none."""

    plan: Plan
    quota: Quota
    concurrent_requests: int


class TenantLimits:
    """Each tenant's policy, its counters and caps, and what was decided, for the metrics.

    A policy is read once and then refreshed in the background when it is older than the TTL:
    the limits run before admission control, so reading a policy must never make a request
    wait for the database. Only a tenant's first request in a process waits, and for at most
    ``POLICY_WAIT_SECONDS``; past that it goes through unlimited (fail open), and is counted.
    """

    def __init__(
        self,
        database: Database,
        config: TenantConfig,
        limiter: RateLimiter,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._config = config
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self.limiter = limiter
        self.caps = ConcurrencyCaps()
        # tenant -> (when it was read, its policy)
        self._policies: LRUCache[UUID, tuple[float, TenantPolicy]] = LRUCache(CACHED_TENANTS)
        self._reading: dict[UUID, asyncio.Task[TenantPolicy]] = {}
        # (plan, outcome, where it was counted) -> requests: a handful of series at most.
        self.decisions: Counter[tuple[Plan, Outcome, str]] = Counter()
        self.unknown_policies = 0  # requests let through because no policy was known in time

    async def policy(self, tenant_id: UUID) -> TenantPolicy | None:
        """``tenant_id``'s policy as last read; ``None`` when it could not be read in time."""
        known = self._policies.get(tenant_id)
        if known is not None:
            read_at, policy = known
            if self._clock() - read_at >= self._ttl_seconds:
                self._refresh(tenant_id)
            return policy
        try:
            async with asyncio.timeout(POLICY_WAIT_SECONDS):
                # shield: the read goes on for the next request when this one stops waiting.
                return await asyncio.shield(self._refresh(tenant_id))
        except (TimeoutError, DomainError):
            self.unknown_policies += 1
            return None

    async def close(self) -> None:
        """Stop the reads still under way (the app is stopping)."""
        readings = list(self._reading.values())
        for reading in readings:
            reading.cancel()
        await asyncio.gather(*readings, return_exceptions=True)

    def _refresh(self, tenant_id: UUID) -> "asyncio.Task[TenantPolicy]":
        """The read of ``tenant_id``'s policy under way, or a new one: one at a time."""
        reading = self._reading.get(tenant_id)
        if reading is None:
            reading = asyncio.create_task(self._read(tenant_id))
            self._reading[tenant_id] = reading
            reading.add_done_callback(lambda done: self._read_done(tenant_id, done))
        return reading

    def _read_done(self, tenant_id: UUID, reading: "asyncio.Task[TenantPolicy]") -> None:
        self._reading.pop(tenant_id, None)
        if reading.cancelled():
            return
        if (error := reading.exception()) is not None:
            # The last policy read stays in force until a read succeeds.
            logger.warning("a tenant's limits could not be read", extra={"error": repr(error)})
            return
        self._policies[tenant_id] = (self._clock(), reading.result())

    async def _read(self, tenant_id: UUID) -> TenantPolicy:
        with tenant_context(tenant_id):
            async with self._database.session(read_only=True) as session:
                plan = await session.scalar(select(Tenant.plan).where(Tenant.id == tenant_id))
                per_minute = await self._config.get(session, REQUESTS_PER_MINUTE)
                concurrent = await self._config.get(session, CONCURRENT_REQUESTS)
        plan_limits = PLAN_LIMITS[plan or Plan.FREE]
        return TenantPolicy(
            plan=plan or Plan.FREE,
            quota=Quota(per_minute or plan_limits.requests_per_minute),
            concurrent_requests=concurrent or plan_limits.concurrent_requests,
        )
