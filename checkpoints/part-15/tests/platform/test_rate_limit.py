"""The sliding-window counter, in this process and in Redis, its fail-open policy and the
concurrency cap."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest
import redis.asyncio as redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfwise.platform.rate_limit import (
    CapReachedError,
    ConcurrencyCaps,
    Decision,
    LocalLimiter,
    Quota,
    RateLimiter,
    RedisLimiter,
)
from shelfwise.platform.resilience import CircuitBreaker
from tests.clocks import Clock
from tests.redis_servers import started_redis

TEN_A_MINUTE = (Quota(limit=10),)
# A minute's quota, and a second's that bounds how fast it is spent.
TEN_A_MINUTE_THREE_A_SECOND = (Quota(10, 60, "minute"), Quota(3, 1, "second"))


def test_the_quota_is_spent_then_refused_with_the_wait_until_it_fits() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)

    spent = [limiter.take("a", TEN_A_MINUTE, 1) for _ in range(10)]
    refused = limiter.take("a", TEN_A_MINUTE, 1)

    assert all(decision.allowed for decision in spent)
    assert [decision.usages[0].remaining for decision in spent] == list(range(9, -1, -1))
    assert not refused.allowed
    # All 10 were spent at the window's start. At 60 s they become the previous window, and
    # one unit fits once its weight is down to 9/10: 6 s into the next window.
    assert refused.retry_after_seconds == 66
    clock.now += 65
    assert not limiter.take("a", TEN_A_MINUTE, 1).allowed
    clock.now += 1
    assert limiter.take("a", TEN_A_MINUTE, 1).allowed


def test_a_burst_at_a_window_edge_is_not_a_second_quota() -> None:
    # A fixed window resets at 60 s, so 10 at 59 s and 10 more at 61 s would all pass.
    clock = Clock()
    limiter = LocalLimiter(clock)
    clock.now += 59
    late = [limiter.take("a", TEN_A_MINUTE, 1).allowed for _ in range(10)]
    clock.now += 2

    early = [limiter.take("a", TEN_A_MINUTE, 1).allowed for _ in range(10)]

    assert all(late)
    # At 61 s, 59/60 of the previous window's 10 still count: 9.83, so no whole unit fits.
    assert early.count(True) == 0


def test_a_route_cost_spends_that_many_units_and_keys_are_separate() -> None:
    limiter = LocalLimiter(Clock())

    order = limiter.take("a", TEN_A_MINUTE, 8)
    too_much = limiter.take("a", TEN_A_MINUTE, 3)
    fits = limiter.take("a", TEN_A_MINUTE, 2)
    other_tenant = limiter.take("b", TEN_A_MINUTE, 10)

    assert (order.allowed, order.usages[0].remaining) == (True, 2)
    assert (too_much.allowed, too_much.usages[0].remaining) == (False, 2)
    assert (fits.allowed, fits.usages[0].remaining) == (True, 0)
    assert other_tenant.allowed


def test_a_seconds_quota_bounds_how_fast_a_minutes_is_spent() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)

    first_second = [limiter.take("a", TEN_A_MINUTE_THREE_A_SECOND, 1) for _ in range(5)]
    clock.now += 2
    later = [limiter.take("a", TEN_A_MINUTE_THREE_A_SECOND, 1) for _ in range(5)]

    assert [decision.allowed for decision in first_second] == [True] * 3 + [False] * 2
    minute, second = first_second[-1].usages
    assert (minute.remaining, minute.wait_seconds) == (7, 0)  # the minute's quota has room
    assert second.remaining == 0
    # 3 spent at 0 s in the second's window: one fits when 2/3 of them count, at 1.333 s.
    assert first_second[-1].retry_after_seconds == 2
    assert [decision.allowed for decision in later] == [True] * 3 + [False] * 2


async def test_a_cost_above_the_whole_quota_spends_the_whole_quota() -> None:
    clock = Clock()
    limiter = RateLimiter(None, LocalLimiter(clock), CircuitBreaker("redis"), clock)

    first = await limiter.take("a", TEN_A_MINUTE, 25)
    second = await limiter.take("a", TEN_A_MINUTE, 25)
    clock.now += second.retry_after_seconds
    later = await limiter.take("a", TEN_A_MINUTE, 25)

    assert (first.allowed, first.usages[0].remaining) == (True, 0)
    assert not second.allowed
    # 10 spent at 0 s: all 10 fit again once the previous window no longer counts, at 120 s.
    assert second.retry_after_seconds == 120
    assert later.allowed
    with pytest.raises(ValueError):
        LocalLimiter(clock).take("a", TEN_A_MINUTE, 11)  # only RateLimiter clamps


steps = st.lists(
    # Up to 150 s a step: sometimes a whole window passes, and both counts expire.
    st.tuples(st.floats(min_value=0, max_value=150, allow_nan=False), st.integers(1, 4)),
    min_size=1,
    max_size=40,
)


# Steps of up to 2 s, for a second's quota to matter.
short_steps = st.lists(
    st.tuples(st.floats(min_value=0, max_value=2, allow_nan=False), st.integers(1, 3)),
    min_size=1,
    max_size=40,
)
quota_sets = st.sampled_from([TEN_A_MINUTE, TEN_A_MINUTE_THREE_A_SECOND])


@given(steps=steps | short_steps, quotas=quota_sets)
def test_a_refusal_says_exactly_when_the_request_would_fit(
    steps: list[tuple[float, int]], quotas: tuple[Quota, ...]
) -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    for advance, cost in steps:
        clock.now += advance
        cost = min(cost, *(quota.limit for quota in quotas))
        decision = limiter.take("a", quotas, cost)
        if decision.allowed:
            continue
        wait = decision.retry_after_seconds
        # A second less and it still does not fit (refusals spend nothing); then it does.
        clock.now += wait - 1
        assert not limiter.take("a", quotas, cost).allowed
        clock.now += 1
        assert limiter.take("a", quotas, cost).allowed


# The fixture's Redis database is emptied before each example instead.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(steps=steps | short_steps, quotas=quota_sets)
async def test_redis_decides_exactly_as_the_local_counter(
    redis_url: str, steps: list[tuple[float, int]], quotas: tuple[Quota, ...]
) -> None:
    clock = Clock()
    client = redis.Redis.from_url(redis_url)
    await client.flushdb()
    shared, local = RedisLimiter(client, clock), LocalLimiter(clock)
    try:
        for advance, cost in steps:
            clock.now += advance
            cost = min(cost, *(quota.limit for quota in quotas))
            expected = replace(local.take("a", quotas, cost), counted_by="redis")
            assert await shared.take("a", quotas, cost) == expected
    finally:
        await client.aclose()


async def test_processes_racing_for_the_last_units_never_spend_more_than_the_quota(
    redis_url: str,
) -> None:
    clients = [redis.Redis.from_url(redis_url) for _ in range(4)]  # four processes' pools
    limiters = [RedisLimiter(client) for client in clients]
    try:
        decisions = await asyncio.gather(
            *(limiters[n % 4].take("a", (Quota(limit=25),), 1) for n in range(100))
        )
    finally:
        for client in clients:
            await client.aclose()

    assert sum(decision.allowed for decision in decisions) == 25


async def test_without_redis_each_process_still_limits_alone() -> None:
    unreachable = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    breaker = CircuitBreaker("redis", failures=1, reset_seconds=60)
    limiter = RateLimiter(RedisLimiter(unreachable), LocalLimiter(), breaker)

    decisions = [await limiter.take("a", (Quota(limit=3),), 1) for _ in range(5)]

    assert [decision.allowed for decision in decisions] == [True, True, True, False, False]
    assert [decision.counted_by for decision in decisions] == ["local"] * 4 + ["memory"]
    # One failure opened the circuit: the other four never waited for Redis.
    assert limiter.redis_failures == 1
    await unreachable.aclose()


async def test_a_frozen_redis_costs_one_timeout_then_the_local_counter_decides() -> None:
    with started_redis() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=0.2)
        breaker = CircuitBreaker("redis", failures=1, reset_seconds=60)
        limiter = RateLimiter(RedisLimiter(client), LocalLimiter(), breaker)
        spent = [await limiter.take("a", (Quota(limit=5),), 1) for _ in range(3)]
        server.freeze()
        try:
            async with asyncio.timeout(2):
                decisions = [await limiter.take("a", (Quota(limit=5),), 1) for _ in range(20)]
        finally:
            server.thaw()
        await client.aclose()

    assert {decision.counted_by for decision in spent} == {"redis"}
    # The process goes on from Redis's last counts: 2 of the 5 are left, not a fresh 5.
    assert [decision.allowed for decision in decisions] == [True] * 2 + [False] * 18
    assert {decision.counted_by for decision in decisions[:3]} == {"local"}
    assert limiter.redis_failures == 1


def test_the_concurrency_cap_refuses_the_request_over_it_and_frees_slots() -> None:
    caps = ConcurrencyCaps()

    with caps.hold("a", 2), caps.hold("a", 2), caps.hold("b", 2):
        with pytest.raises(CapReachedError), caps.hold("a", 2):
            pass
        assert (caps.running("a"), caps.running("b")) == (2, 1)

    with caps.hold("a", 1):
        assert caps.running("a") == 1
    assert caps.running("a") == 0


class CountingRedisLimiter(RedisLimiter):
    """Counts the calls that reach Redis."""

    calls = 0

    async def take(self, key: str, quotas: Sequence[Quota], cost: int) -> Decision:
        self.calls += 1
        return await super().take(key, quotas, cost)


async def test_a_flood_over_the_limit_asks_redis_once_until_the_wait_is_over(
    redis_url: str,
) -> None:
    clock = Clock()
    client = redis.Redis.from_url(redis_url)
    shared = CountingRedisLimiter(client, clock)
    limiter = RateLimiter(shared, LocalLimiter(clock), CircuitBreaker("redis"), clock)

    flood = [await limiter.take("a", (Quota(limit=3),), 1) for _ in range(50)]
    calls_during_the_flood = shared.calls
    clock.now += flood[-1].wait_seconds
    after_the_wait = await limiter.take("a", (Quota(limit=3),), 1)
    other_key = await limiter.take("b", (Quota(limit=3),), 1)
    raised_quota = await limiter.take("a", (Quota(limit=9),), 1)
    await client.aclose()

    assert [decision.allowed for decision in flood] == [True] * 3 + [False] * 47
    assert calls_during_the_flood == 4  # three spent, one refused; the rest from memory
    assert {decision.counted_by for decision in flood[4:]} == {"memory"}
    # 3 spent at 0 s: one more fits when 2/3 of them still count, 20 s into the next window.
    assert flood[3].retry_after_seconds == flood[-1].retry_after_seconds == 80
    assert after_the_wait.allowed
    # Another key, or a quota an operator has just raised, is asked of Redis at once.
    assert other_key.allowed and raised_quota.allowed
