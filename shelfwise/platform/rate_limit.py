"""Rate limits: a sliding-window counter per key, shared by every process through Redis, and
a per-key cap on requests in flight in this process.

The counter keeps two numbers per key: the units used in the current fixed window and in the
one before it. Usage is the previous window's count, weighted by how much of it the sliding
window still covers, plus the current count. It needs two integers per key whatever the
limit (a log of timestamps would need one entry per request), and it never lets a burst at
a window's edge double the limit, as a plain fixed window does.

In Redis a Lua script reads both counts, decides and increments in one step, so two processes
can never both spend the last unit. When Redis fails, ``RateLimiter`` fails open: the same
counter in this process's memory decides, and each process enforces the quota alone.
"""

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal, Self

import redis.asyncio as redis
from cachetools import LRUCache
from redis.exceptions import RedisError

from shelfwise.platform.errors import TooManyRequestsError
from shelfwise.platform.resilience import CircuitBreaker, CircuitOpenError

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# OpenAPI extension naming what a route costs in quota units; most routes cost one.
COST_EXTENSION = "x-rate-limit-cost"
# The policy's name in the RateLimit-Policy and RateLimit fields.
POLICY_NAME = "tenant"
# Keys whose counts a process keeps in memory at most, when it counts alone.
LOCAL_KEYS = 100_000

Limiter = Literal["redis", "local"]

# KEYS[1]: the previous window's count, KEYS[2]: the current one's. ARGV: milliseconds elapsed
# in the current window, the window, the limit, this request's cost. The test is the same
# expression as ``_admits`` below, in the same order, so both decide alike to the last unit.
SLIDING_WINDOW_SCRIPT = """
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local elapsed = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
if previous * (window - elapsed) / window + current + cost > limit then
  return {0, previous, current}
end
current = redis.call('INCRBY', KEYS[2], cost)
redis.call('PEXPIRE', KEYS[2], 2 * window)
return {1, previous, current}
"""


@dataclass(frozen=True)
class Quota:
    """``limit`` units per sliding window of ``window_seconds``."""

    limit: int
    window_seconds: int = WINDOW_SECONDS


@dataclass(frozen=True)
class Decision:
    """Whether one request may spend ``cost`` units, and what is left."""

    allowed: bool
    quota: Quota
    remaining: int
    # Seconds until the current window ends.
    reset_seconds: int
    # Seconds until this request would be allowed if nothing more were spent (0: allowed).
    # Anything spent meanwhile, here or in another process, only makes it later.
    wait_seconds: float
    limiter: Limiter

    @property
    def retry_after_seconds(self) -> int:
        """``wait_seconds`` as ``Retry-After`` says it: whole seconds, at least 1 (0: allowed)."""
        return max(1, math.ceil(self.wait_seconds)) if not self.allowed else 0


@dataclass(frozen=True)
class _Window:
    """Where ``now`` falls: the current window's start, and milliseconds since it."""

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


def _admits(window: _Window, previous: int, current: int, cost: int, limit: int) -> bool:
    window_ms, elapsed_ms = window.window_ms, window.elapsed_ms
    return not previous * (window_ms - elapsed_ms) / window_ms + current + cost > limit


def _decision(
    window: _Window, quota: Quota, cost: int, counts: tuple[int, int, int], limiter: Limiter
) -> Decision:
    allowed, previous, current = counts
    window_ms, elapsed_ms = window.window_ms, window.elapsed_ms
    used = previous * (window_ms - elapsed_ms) / window_ms + current
    retry_ms = 0 if allowed else _wait_ms(window, quota.limit - cost, previous, current)
    return Decision(
        allowed=bool(allowed),
        quota=quota,
        remaining=max(0, math.floor(quota.limit - used)),
        reset_seconds=window.reset_seconds,
        wait_seconds=retry_ms / 1000,
        limiter=limiter,
    )


def _wait_ms(window: _Window, room: int, previous: int, current: int) -> float:
    """Milliseconds until ``previous``'s weighted share plus ``current`` fit in ``room``, if
    nothing more is spent: first as the previous window slides out, then, past the window's
    end, as the current one does."""
    window_ms, left_ms = window.window_ms, window.window_ms - window.elapsed_ms
    if room < 0:  # the cost alone is over the limit: no wait is enough
        return window_ms + left_ms
    if current <= room and previous > 0:
        return max(0.0, left_ms - window_ms * (room - current) / previous)
    return left_ms + max(0.0, window_ms - window_ms * room / current)


class LocalLimiter:
    """The sliding-window counter in this process's memory: what one process alone spent."""

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = LOCAL_KEYS):
        self._clock = clock
        # key -> (window start in ms, previous window's count, current window's count)
        self._counts: LRUCache[str, tuple[int, int, int]] = LRUCache(max_keys)

    def take(self, key: str, quota: Quota, cost: int) -> Decision:
        """Spend ``cost`` units of ``key``'s quota if they fit."""
        window = _Window.at(self._clock(), quota)
        start, previous, current = self._counts.get(key, (window.start_ms, 0, 0))
        if start != window.start_ms:
            # The window moved on: the current count becomes the previous one, or, if more
            # than one window passed, both are spent.
            adjacent = start == window.start_ms - window.window_ms
            previous, current = (current if adjacent else 0), 0
        allowed = _admits(window, previous, current, cost, quota.limit)
        if allowed:
            current += cost
        self._counts[key] = (window.start_ms, previous, current)
        return _decision(window, quota, cost, (allowed, previous, current), "local")


class RedisLimiter:
    """The sliding-window counter in Redis: what every process sharing it spent."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._script = client.register_script(SLIDING_WINDOW_SCRIPT)

    async def take(self, key: str, quota: Quota, cost: int) -> Decision:
        """Spend ``cost`` units of ``key``'s quota if they fit, atomically."""
        window = _Window.at(self._clock(), quota)
        # `{key}`: a hash tag, so both windows of a key live on one Redis Cluster node.
        keys = [f"{{{key}}}:{window.start_ms - window.window_ms}", f"{{{key}}}:{window.start_ms}"]
        arguments = [window.elapsed_ms, window.window_ms, quota.limit, cost]
        allowed, previous, current = await self._script(keys=keys, args=arguments)
        return _decision(window, quota, cost, (allowed, previous, current), "redis")


class RateLimiter:
    """Redis's counter while it answers; this process's own when it does not (fail open).

    An outage must not turn into 5xx for every tenant, nor into no limit at all: each process
    goes on counting what it sees, so a deployment of N processes admits up to N times the
    quota until Redis is back. The breaker stops paying Redis's timeout on every request.

    A refusal says how long nothing of that cost can fit, anywhere: until then, the same
    request is refused from memory. A flood over the limit costs Redis one call, not one each.
    """

    def __init__(
        self,
        redis_limiter: RedisLimiter | None,
        local: LocalLimiter,
        breaker: CircuitBreaker,
        clock: Callable[[], float] = time.time,
        max_keys: int = LOCAL_KEYS,
    ) -> None:
        self._redis = redis_limiter
        self._local = local
        self._clock = clock
        self.breaker = breaker
        self.redis_failures = 0
        # (key, cost) -> (refused until, the refusal)
        self._refused: LRUCache[tuple[str, int], tuple[float, Decision]] = LRUCache(max_keys)

    async def take(self, key: str, quota: Quota, cost: int) -> Decision:
        """Spend ``cost`` units of ``key``'s quota if they fit, wherever it is counted now."""
        now = self._clock()
        until, refusal = self._refused.get((key, cost), (0.0, None))
        if refusal is not None and refusal.quota == quota and now < until:
            reset = _Window.at(now, quota).reset_seconds
            return replace(refusal, wait_seconds=until - now, reset_seconds=reset)
        decision = await self._take(key, quota, cost)
        if not decision.allowed:
            self._refused[key, cost] = (now + decision.wait_seconds, decision)
        return decision

    async def _take(self, key: str, quota: Quota, cost: int) -> Decision:
        if self._redis is not None and self.breaker.admits():
            try:
                with self.breaker.guard():
                    return await self._redis.take(key, quota, cost)
            except (RedisError, CircuitOpenError) as error:
                self.redis_failures += 1
                logger.warning(
                    "rate limits counted in this process: redis failed",
                    extra={"error": type(error).__name__},
                )
        return self._local.take(key, quota, cost)


class RateLimitedError(TooManyRequestsError):
    """The caller's tenant spent its quota of requests for now. Retry after the number of
    seconds in the `Retry-After` header; the `RateLimit-Policy` and `RateLimit` headers give
    the quota, what is left of it and when the window ends."""

    code: ClassVar[str] = "rate_limited"
    title: ClassVar[str] = "Rate limit reached"


class TooManyConcurrentRequestsError(TooManyRequestsError):
    """The caller's tenant already has as many requests running as its plan allows. Retry
    after the number of seconds in the `Retry-After` header, or wait for an answer first."""

    code: ClassVar[str] = "too_many_concurrent_requests"
    title: ClassVar[str] = "Too many concurrent requests"


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
        """One of ``key``'s ``cap`` slots for the block, or ``TooManyConcurrentRequestsError``."""
        if self._running[key] >= cap:
            raise TooManyConcurrentRequestsError(
                f"At most {cap} requests of this tenant may run at once. Retry in 1 s.",
                retry_after_seconds=1,
            )
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


def limit_fields(decision: Decision) -> dict[str, str]:
    """The ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers)
    for ``decision``: the quota and its window; what is left and when the window ends."""
    quota = decision.quota
    return {
        "RateLimit-Policy": f'"{POLICY_NAME}";q={quota.limit};w={quota.window_seconds}',
        "RateLimit": f'"{POLICY_NAME}";r={decision.remaining};t={decision.reset_seconds}',
    }
