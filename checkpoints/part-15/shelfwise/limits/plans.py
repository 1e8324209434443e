"""What each plan may use, what a tenant's contract overrides, and the lookup that combines
them for the current request."""

import asyncio
import contextvars
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

from cachetools import LRUCache
from pydantic import Field, StrictInt

from shelfwise.identity.onboarding import plan_of
from shelfwise.platform.db import Database
from shelfwise.platform.errors import DomainError
from shelfwise.platform.rate_limit import ConcurrencyCaps, CountedBy, Quota, RateLimiter
from shelfwise.tenancy.config import CACHED_TENANTS, SettingSpec, TenantConfig, tenant_setting
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.models import Plan

logger = logging.getLogger(__name__)

# The longest a tenant's first request in a process waits for its policy (a read takes ms).
POLICY_WAIT_SECONDS = 0.25
# The longest a read of a policy may take, its waits included: a busy database keeps the
# policy it had, for another TTL, rather than queue for connections.
POLICY_READ_SECONDS = 1.0
# Policy reads a process runs at once: they take pooled connections outside admission control,
# so however many tenants need one, they hold at most this many.
POLICY_READS = 2


@dataclass(frozen=True)
class PlanLimits:
    """What one plan may use: quota units a minute and a second, and requests in flight per
    process."""

    requests_per_minute: int
    requests_per_second: int
    concurrent_requests: int


# The series' tiers are 1,000 and 10,000 requests a minute; enterprise contracts start at
# 100,000 and are usually set per tenant. A second's quota is 1.2 times the minute's average
# rate: a minute's quota cannot be spent in its first second. The caps are well below the
# requests a process runs at once (50 by default: the pool's 20 connections, 30 of overflow).
PLAN_LIMITS = {
    Plan.FREE: PlanLimits(requests_per_minute=1_000, requests_per_second=20, concurrent_requests=2),
    Plan.PRO: PlanLimits(
        requests_per_minute=10_000, requests_per_second=200, concurrent_requests=6
    ),
    Plan.ENTERPRISE: PlanLimits(
        requests_per_minute=100_000, requests_per_second=2_000, concurrent_requests=10
    ),
}

# While a tenant's policy is not known yet, its requests at once are capped as a free tenant's.
PROVISIONAL_CAP = PLAN_LIMITS[Plan.FREE].concurrent_requests

REQUESTS_PER_MINUTE: SettingSpec[int | None] = tenant_setting(
    "limits.requests_per_minute",
    Annotated[StrictInt, Field(ge=1, le=10_000_000)] | None,
    None,
    "quota units a minute (most requests cost 1), across every process (null: the plan's)",
)
REQUESTS_PER_SECOND: SettingSpec[int | None] = tenant_setting(
    "limits.requests_per_second",
    Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None,
    None,
    "quota units a second, across every process: how fast a minute's quota may be spent "
    "(null: the plan's)",
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
    quotas: tuple[Quota, ...]  # a minute's, then a second's
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
        self._read_slots = asyncio.Semaphore(POLICY_READS)
        # (plan, outcome, who counted) -> requests: a handful of series at most.
        self.decisions: Counter[tuple[Plan, Outcome, CountedBy]] = Counter()
        self.unknown_policies = 0  # requests whose tenant's policy was not known in time
        self.errors = 0  # requests let through because deciding failed unexpectedly

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
            # A context of its own: the read is no one request's, in its logs and its trace.
            reading = asyncio.create_task(self._read(tenant_id), context=contextvars.Context())
            self._reading[tenant_id] = reading
            reading.add_done_callback(lambda done: self._read_done(tenant_id, done))
        return reading

    def _read_done(self, tenant_id: UUID, reading: "asyncio.Task[TenantPolicy]") -> None:
        self._reading.pop(tenant_id, None)
        if reading.cancelled():
            return
        if (error := reading.exception()) is not None:
            # The last policy read stays in force, for another TTL before the next try.
            logger.warning("a tenant's limits could not be read", extra={"error": repr(error)})
            if (known := self._policies.get(tenant_id)) is not None:
                self._policies[tenant_id] = (self._clock(), known[1])
            return
        self._policies[tenant_id] = (self._clock(), reading.result())

    async def _read(self, tenant_id: UUID) -> TenantPolicy:
        async with asyncio.timeout(POLICY_READ_SECONDS), self._read_slots:
            return await self._read_now(tenant_id)

    async def _read_now(self, tenant_id: UUID) -> TenantPolicy:
        with tenant_context(tenant_id):
            async with self._database.session(read_only=True) as session:
                plan = await plan_of(session, tenant_id)
                per_minute = await self._config.get(session, REQUESTS_PER_MINUTE)
                per_second = await self._config.get(session, REQUESTS_PER_SECOND)
                concurrent = await self._config.get(session, CONCURRENT_REQUESTS)
        plan_limits = PLAN_LIMITS[plan or Plan.FREE]
        return TenantPolicy(
            plan=plan or Plan.FREE,
            quotas=(
                Quota(per_minute or plan_limits.requests_per_minute, 60, "minute"),
                Quota(per_second or plan_limits.requests_per_second, 1, "second"),
            ),
            concurrent_requests=concurrent or plan_limits.concurrent_requests,
        )
