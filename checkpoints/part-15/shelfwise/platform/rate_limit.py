"""Rate limits: a sliding-window counter per key, shared by every process through Redis, and
a per-key cap on requests in flight in this process.

The counter keeps two numbers per key: the units used in the current fixed window and in the
one before it. Usage is the previous window's count, weighted by how much of it the sliding
window still covers, plus the current count. It needs two integers per key whatever the
limit (a log of timestamps would need one entry per request), and it never lets a burst at
a window's edge double the limit, as a plain fixed window does.

In Redis a Lua script reads both counts, decides and increments in one step, so two processes
can never both spend the last unit. When Redis fails, ``RateLimiter`` fails open: the same
counter in this process's memory decides, from the last counts Redis gave it, and each
process enforces the quota alone.
"""

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

import redis.asyncio as redis
from cachetools import LRUCache
from redis.exceptions import RedisError

from shelfwise.platform.resilience import CircuitBreaker, CircuitOpenError

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# OpenAPI extension naming what a route costs in quota units; most routes cost one.
COST_EXTENSION = "x-rate-limit-cost"
# The most keys a process keeps counts for, and refusals for, each in memory.
KEPT_KEYS = 100_000
# Every key of the limiter in Redis starts with this, so operators can find them.
KEY_PREFIX = "ratelimit"

# Who decided: Redis, this process's counter, or a refusal remembered from either.
CountedBy = Literal["redis", "local", "memory"]
# One quota's counts: (its current window's start in ms, the previous window's, the current's)
Counts = tuple[int, int, int]

# For each quota i: KEYS[2i-1] and KEYS[2i] hold its previous and current window's counts;
# ARGV[3i-1], ARGV[3i] and ARGV[3i+1] are the milliseconds elapsed in its current window, its
# window and its limit. ARGV[1] is the request's cost. The request is spent in every quota,
# or in none. The test is the same expression as ``_admits`` below, in the same order, so
# both decide alike to the last unit.
SLIDING_WINDOW_SCRIPT = """
local cost = tonumber(ARGV[1])
local answer = {1}
for i = 1, #KEYS / 2 do
  local previous = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local current = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local elapsed = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local limit = tonumber(ARGV[3 * i + 1])
  if previous * (window - elapsed) / window + current + cost > limit then
    answer[1] = 0
  end
  answer[2 * i] = previous
  answer[2 * i + 1] = current
end
if answer[1] == 1 then
  for i = 1, #KEYS / 2 do
    answer[2 * i + 1] = redis.call('INCRBY', KEYS[2 * i], cost)
    redis.call('PEXPIRE', KEYS[2 * i], 2 * tonumber(ARGV[3 * i]))
  end
end
return answer
"""


@dataclass(frozen=True)
class Quota:
    """``limit`` units per sliding window of ``window_seconds``, called ``name`` in the
    ``RateLimit`` fields."""

    limit: int
    window_seconds: int = WINDOW_SECONDS
    name: str = "minute"


@dataclass(frozen=True)
class Usage:
    """One quota after a request: what is left, and how long until the request fits."""

    quota: Quota
    remaining: int
    # Seconds until the quota's current window ends.
    reset_seconds: int
    # Seconds until a request of this cost fits this quota, if nothing more is spent (0: now).
    wait_seconds: float
    counts: Counts


@dataclass(frozen=True)
class Decision:
    """Whether one request may spend its cost in every quota, and what each has left."""

    allowed: bool
    usages: tuple[Usage, ...]
    counted_by: CountedBy

    @property
    def quotas(self) -> tuple[Quota, ...]:
        return tuple(usage.quota for usage in self.usages)

    @property
    def wait_seconds(self) -> float:
        """Seconds until the request fits every quota, if nothing more is spent. Anything
        spent meanwhile, here or in another process, only makes it later."""
        return max(usage.wait_seconds for usage in self.usages)

    @property
    def retry_after_seconds(self) -> int:
        """``wait_seconds`` as ``Retry-After`` says it: whole seconds, at least 1 (0: allowed)."""
        return max(1, math.ceil(self.wait_seconds)) if not self.allowed else 0


@dataclass(frozen=True)
class _Window:
    """Where ``now`` falls in a quota's windows: the current one's start, and milliseconds
    since it."""

    start_ms: int
    elapsed_ms: int
    window_ms: int

    @classmethod
    def at(cls, now: float, quota: Quota) -> Self:
        now_ms = int(now * 1000)
        window_ms = quota.window_seconds * 1000
        return cls(now_ms - now_ms % window_ms, now_ms % window_ms, window_ms)

    @property
    def reset_seconds(self) -> int:
        """Whole seconds until the window ends."""
        return math.ceil((self.window_ms - self.elapsed_ms) / 1000)


def _windows(now: float, quotas: Sequence[Quota], cost: int) -> list[_Window]:
    if not quotas:
        raise ValueError("a request is counted against one quota at least")
    if not 1 <= cost <= min(quota.limit for quota in quotas):
        # RateLimiter.take clamps a cost above a quota; no other cost can ever fit.
        raise ValueError(f"a cost is 1 to the smallest quota, got {cost}")
    return [_Window.at(now, quota) for quota in quotas]


def _used(window: _Window, previous: int, current: int) -> float:
    """The units the sliding window holds: the previous window's share, and the current."""
    return previous * (window.window_ms - window.elapsed_ms) / window.window_ms + current


def _admits(window: _Window, previous: int, current: int, cost: int, limit: int) -> bool:
    return not _used(window, previous, current) + cost > limit


def _decision(
    windows: Sequence[_Window],
    quotas: Sequence[Quota],
    cost: int,
    allowed: bool,
    counts: Sequence[tuple[int, int]],
    by: CountedBy,
) -> Decision:
    """The decision for the counts each quota had after the request (spent, if allowed)."""
    usages = []
    for window, quota, (previous, current) in zip(windows, quotas, counts, strict=True):
        fits = allowed or _admits(window, previous, current, cost, quota.limit)
        wait_ms = 0.0 if fits else _wait_ms(window, quota.limit - cost, previous, current)
        usages.append(
            Usage(
                quota=quota,
                remaining=max(0, math.floor(quota.limit - _used(window, previous, current))),
                reset_seconds=window.reset_seconds,
                wait_seconds=wait_ms / 1000,
                counts=(window.start_ms, previous, current),
            )
        )
    return Decision(bool(allowed), tuple(usages), by)


def _wait_ms(window: _Window, room: int, previous: int, current: int) -> float:
    """Milliseconds until ``previous``'s weighted share plus ``current`` fit in ``room``, if
    nothing more is spent: first as the previous window slides out, then, past the window's
    end, as the current one does."""
    window_ms, left_ms = window.window_ms, window.window_ms - window.elapsed_ms
    if current <= room and previous > 0:
        return max(0.0, left_ms - window_ms * (room - current) / previous)
    return left_ms + max(0.0, window_ms - window_ms * room / current)


class LocalLimiter:
    """The sliding-window counter in this process's memory."""

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = KEPT_KEYS):
        self._clock = clock
        # (key, window seconds) -> that quota's counts
        self._counts: LRUCache[tuple[str, int], Counts] = LRUCache(max_keys)

    def take(self, key: str, quotas: Sequence[Quota], cost: int) -> Decision:
        """Spend ``cost`` units of each of ``key``'s quotas if they fit in every one."""
        windows = _windows(self._clock(), quotas, cost)
        counts = [
            self._counts_at(key, quota, window)
            for quota, window in zip(quotas, windows, strict=True)
        ]
        allowed = all(
            _admits(window, previous, current, cost, quota.limit)
            for window, quota, (previous, current) in zip(windows, quotas, counts, strict=True)
        )
        if allowed:
            counts = [(previous, current + cost) for previous, current in counts]
        for quota, window, (previous, current) in zip(quotas, windows, counts, strict=True):
            self._counts[key, quota.window_seconds] = (window.start_ms, previous, current)
        return _decision(windows, quotas, cost, allowed, counts, "local")

    def remember(self, key: str, decision: Decision) -> None:
        """Start from ``decision``'s counts (what Redis last said), should this process count
        alone."""
        for usage in decision.usages:
            self._counts[key, usage.quota.window_seconds] = usage.counts

    def _counts_at(self, key: str, quota: Quota, window: _Window) -> tuple[int, int]:
        start, previous, current = self._counts.get(
            (key, quota.window_seconds), (window.start_ms, 0, 0)
        )
        if start == window.start_ms:
            return previous, current
        # The window moved on: the current count becomes the previous one, or, if more than
        # one window passed, both are spent.
        return (current if start == window.start_ms - window.window_ms else 0), 0


class RedisLimiter:
    """The sliding-window counter in Redis: what every process sharing it spent."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._script = client.register_script(SLIDING_WINDOW_SCRIPT)

    async def take(self, key: str, quotas: Sequence[Quota], cost: int) -> Decision:
        """Spend ``cost`` units of each of ``key``'s quotas if they fit in every one,
        atomically."""
        windows = _windows(self._clock(), quotas, cost)
        keys: list[str] = []
        arguments = [cost]
        for quota, window in zip(quotas, windows, strict=True):
            # `{key}`: a hash tag, so all of a key's windows live on one Redis Cluster node.
            prefix = f"{KEY_PREFIX}:{{{key}}}:{quota.window_seconds}"
            keys += [
                f"{prefix}:{window.start_ms - window.window_ms}",
                f"{prefix}:{window.start_ms}",
            ]
            arguments += [window.elapsed_ms, window.window_ms, quota.limit]
        allowed, *flat = await self._script(keys=keys, args=arguments)
        counts = list(zip(flat[::2], flat[1::2], strict=True))
        return _decision(windows, quotas, cost, bool(allowed), counts, "redis")


class RateLimiter:
    """Redis's counter while it answers; this process's own when it does not (fail open).

    An outage must not turn into 5xx for every tenant, nor into no limit at all. Each process
    goes on counting from the last counts Redis gave it, and counts alone what it admits: a
    deployment of N processes admits up to N times what is left of a quota until Redis is
    back. The breaker stops paying Redis's timeout on every request.

    A refusal says how long nothing of that cost can fit, anywhere: until then, the same
    request is refused from memory. A flood over the limit costs Redis one call, not one each.
    """

    def __init__(
        self,
        redis_limiter: RedisLimiter | None,
        local: LocalLimiter,
        breaker: CircuitBreaker,
        clock: Callable[[], float] = time.time,
        max_keys: int = KEPT_KEYS,
    ) -> None:
        self._redis = redis_limiter
        self._local = local
        self._clock = clock
        self.breaker = breaker
        self.redis_failures = 0
        # (key, cost) -> (when it was refused, the refusal)
        self._refused: LRUCache[tuple[str, int], tuple[float, Decision]] = LRUCache(max_keys)

    async def take(self, key: str, quotas: Sequence[Quota], cost: int) -> Decision:
        """Spend ``cost`` units of each of ``key``'s quotas if they fit in every one, wherever
        they are counted now.

        A cost above a whole quota spends that whole quota: a tenant whose quota is set below
        a route's cost can still call the route, once a full window is free.
        """
        quotas = tuple(quotas)
        cost = min(cost, *(quota.limit for quota in quotas))
        now = self._clock()
        refused_at, refusal = self._refused.get((key, cost), (0.0, None))
        if refusal is not None and refusal.quotas == quotas:
            waited = now - refused_at
            if waited < refusal.wait_seconds:
                usages = tuple(
                    replace(
                        usage,
                        wait_seconds=max(0.0, usage.wait_seconds - waited),
                        reset_seconds=_Window.at(now, usage.quota).reset_seconds,
                    )
                    for usage in refusal.usages
                )
                return Decision(False, usages, "memory")
        decision = await self._take(key, quotas, cost)
        if not decision.allowed:
            self._refused[key, cost] = (now, decision)
        return decision

    async def _take(self, key: str, quotas: tuple[Quota, ...], cost: int) -> Decision:
        if self._redis is not None and self.breaker.admits():
            try:
                with self.breaker.guard():
                    decision = await self._redis.take(key, quotas, cost)
                self._local.remember(key, decision)
                return decision
            except (RedisError, CircuitOpenError) as error:
                self.redis_failures += 1
                logger.warning(
                    "rate limits counted in this process: redis failed",
                    extra={"error": type(error).__name__},
                )
        return self._local.take(key, quotas, cost)


class CapReachedError(Exception):
    """The key already has as many requests running as its cap allows."""


class ConcurrencyCaps:
    """How many requests each key has running in this process, each capped.

    Per process on purpose: what a cap protects (connections, workers, memory) is per process
    too. A key's entry exists only while it has requests running.
    """

    def __init__(self) -> None:
        self._running: Counter[str] = Counter()

    def running(self, key: str) -> int:
        """Requests of ``key`` running now."""
        return self._running[key]

    @contextmanager
    def hold(self, key: str, cap: int) -> Iterator[None]:
        """One of ``key``'s ``cap`` slots for the block, or ``CapReachedError``."""
        if self._running[key] >= cap:
            raise CapReachedError(key)
        self._running[key] += 1
        try:
            yield
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]


def costs(units: int) -> dict[str, Any]:
    """A route's ``openapi_extra``: each call spends ``units`` of the quota (the default is 1).
    The cost shows in the API's schema, so clients can plan for it."""
    if units < 1:
        raise ValueError(f"a cost is at least 1 unit, got {units}")
    return {COST_EXTENSION: units}
