"""The two-level cache on a real Redis: hits, one load per key however many miss at once,
invalidation that reaches every process, and a Redis that dies or hangs costing nothing but
the time to notice."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as redis
from pydantic import SecretStr

from shelfwise.platform.cache import TwoLevelCache, opened_cache
from shelfwise.platform.resilience import CircuitState
from shelfwise.platform.settings import CacheSettings
from tests.redis_servers import RedisServer, started_redis

TTL = 60


class Loads:
    """A loader that counts its calls and can be made slow, to overlap concurrent misses."""

    def __init__(self, value: bytes = b"from the database", delay: float = 0.0) -> None:
        self.calls = 0
        self.value = value
        self.delay = delay

    async def __call__(self) -> bytes:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.value


@asynccontextmanager
async def listening(cache: TwoLevelCache) -> AsyncIterator[TwoLevelCache]:
    """``cache`` with its invalidation listener running, subscribed before the block starts."""
    assert cache.redis is not None
    listener = asyncio.create_task(cache.listen_for_invalidations())
    async with asyncio.timeout(5):
        while not (await cache.redis.pubsub_numsub(cache.channel))[0][1]:
            await asyncio.sleep(0.01)
    try:
        yield cache
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener


def circuit(cache: TwoLevelCache) -> CircuitState:
    return cache.breaker.state


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.01)


async def test_a_value_is_loaded_once_then_served_from_l1(
    redis_cache_settings: CacheSettings,
) -> None:
    load = Loads()
    async with opened_cache(redis_cache_settings) as cache:
        first = await cache.get_or_load("k", load, ttl_seconds=TTL)
        second = await cache.get_or_load("k", load, ttl_seconds=TTL)

    assert first == second == b"from the database"
    assert load.calls == 1
    assert (cache.counts.loads, cache.counts.l1_hits) == (1, 1)


async def test_another_process_reads_the_value_from_redis_without_loading(
    redis_cache_settings: CacheSettings, redis_url: str
) -> None:
    async with opened_cache(redis_cache_settings) as one, opened_cache(redis_cache_settings) as two:
        await one.get_or_load("k", Loads(b"stored by one"), ttl_seconds=TTL)
        load = Loads(b"loaded by two")
        value = await two.get_or_load("k", load, ttl_seconds=TTL)

    assert value == b"stored by one"
    assert load.calls == 0
    assert two.counts.l2_hits == 1
    shared = redis.Redis.from_url(redis_url)
    assert 0 < await shared.ttl("k") <= TTL
    await shared.aclose()


@pytest.mark.parametrize("with_redis", [False, True], ids=["in-process", "redis"])
async def test_a_hundred_concurrent_misses_load_once(
    with_redis: bool, redis_cache_settings: CacheSettings
) -> None:
    settings = redis_cache_settings if with_redis else CacheSettings()
    load = Loads(delay=0.05)
    async with opened_cache(settings) as cache:
        values = await asyncio.gather(
            *(cache.get_or_load("k", load, ttl_seconds=TTL) for _ in range(100))
        )

    assert set(values) == {b"from the database"}
    assert load.calls == 1
    assert (cache.counts.loads, cache.counts.coalesced) == (1, 99)


async def test_a_failed_load_fails_every_waiter_and_is_not_cached() -> None:
    class Gone(Exception):
        pass

    calls = 0

    async def failing() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise Gone

    async with opened_cache(CacheSettings()) as cache:
        results = await asyncio.gather(
            *(cache.get_or_load("k", failing, ttl_seconds=TTL) for _ in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(result, Gone) for result in results)
        assert calls == 1
        assert await cache.get_or_load("k", Loads(), ttl_seconds=TTL) == b"from the database"


async def test_a_waiter_loads_itself_when_the_loading_request_is_cancelled() -> None:
    async with opened_cache(CacheSettings()) as cache:
        leader = asyncio.create_task(cache.get_or_load("k", Loads(delay=10), ttl_seconds=TTL))
        await asyncio.sleep(0.01)
        follower = asyncio.create_task(cache.get_or_load("k", Loads(b"own"), ttl_seconds=TTL))
        await asyncio.sleep(0.01)
        leader.cancel()

        assert await asyncio.wait_for(follower, 2) == b"own"
        with pytest.raises(asyncio.CancelledError):
            await leader


async def test_a_new_generation_reaches_every_process_through_pub_sub(
    redis_cache_settings: CacheSettings,
) -> None:
    async with (
        opened_cache(redis_cache_settings) as writer,
        opened_cache(redis_cache_settings) as reader,
        listening(reader),
    ):
        before = await reader.generation("g")
        assert await writer.generation("g") == before  # both read it from Redis

        assert await writer.new_generation("g") is True

        async def reader_sees_a_new_one() -> bool:
            return await reader.generation("g") != before

        await eventually(reader_sees_a_new_one)  # long before the L1 lifetime (5 s) ends
        assert await reader.generation("g") == await writer.generation("g")


async def test_without_redis_a_new_generation_stays_in_the_process() -> None:
    async with opened_cache(CacheSettings()) as cache:
        before = await cache.generation("g")
        assert await cache.new_generation("g") is False  # no other process was told
        assert await cache.generation("g") != before


async def test_a_lost_generation_is_replaced_by_a_new_token_never_an_old_one(
    redis_cache_settings: CacheSettings, redis_url: str
) -> None:
    seen = set()
    shared = redis.Redis.from_url(redis_url)
    async with opened_cache(redis_cache_settings.model_copy(update={"l1_ttl_seconds": 0.01})) as c:
        for _ in range(20):
            seen.add(await c.generation("g"))
            await shared.flushdb()  # Redis restarted empty, or the key evicted
            await asyncio.sleep(0.02)
    await shared.aclose()
    assert len(seen) == 20


@asynccontextmanager
async def cache_on_own_redis(**settings: float) -> AsyncIterator[tuple[TwoLevelCache, RedisServer]]:
    """A cache on a Redis server of its own, which the test may stop or kill."""
    with started_redis() as server:
        cache_settings = CacheSettings.model_validate(
            {"redis_url": server.url, "redis_timeout_seconds": 0.2, **settings}
        )
        async with opened_cache(cache_settings) as cache:
            yield cache, server


async def test_a_dead_redis_is_bypassed_and_its_circuit_opens() -> None:
    async with cache_on_own_redis() as (cache, server):
        await cache.get_or_load("warm", Loads(), ttl_seconds=TTL)
        server.process.kill()
        server.process.wait()

        load = Loads(b"from the database")
        assert await cache.get_or_load("k", load, ttl_seconds=TTL) == b"from the database"
        assert load.calls == 1
        assert circuit(cache) is CircuitState.OPEN
        assert cache.counts.redis_errors >= 1
        # While it is open, Redis is not called at all.
        errors = cache.counts.redis_errors
        for key in range(50):
            await cache.get_or_load(f"other-{key}", Loads(), ttl_seconds=TTL)
        assert cache.counts.redis_errors == errors


async def test_a_hung_redis_costs_one_timeout_then_nothing_and_recovers() -> None:
    async with cache_on_own_redis(redis_retry_seconds=0.3) as (cache, server):
        server.freeze()
        try:
            started = time.monotonic()
            value = await cache.get_or_load("k", Loads(b"v"), ttl_seconds=TTL)
            first = time.monotonic() - started
            assert value == b"v"
            assert first < 1.0  # one 0.2 s timeout, not redis-py's default of forever
            assert circuit(cache) is CircuitState.OPEN
        finally:
            server.thaw()
        await asyncio.sleep(0.35)
        await cache.get_or_load("next", Loads(), ttl_seconds=TTL)  # Redis answers again
        assert circuit(cache) is CircuitState.CLOSED


async def test_after_redis_restarts_the_cache_uses_it_again_at_once() -> None:
    async with cache_on_own_redis() as (cache, server):
        # Several connections in the pool, as under load.
        misses = (cache.get_or_load(f"k{n}", Loads(delay=0.01), ttl_seconds=TTL) for n in range(10))
        await asyncio.gather(*misses)
        server.restart()

        hits = (cache.get_or_load(f"n{n}", Loads(), ttl_seconds=TTL) for n in range(10))
        await asyncio.gather(*hits)

        # Each stale connection was replaced without a failure that pauses the cache.
        assert cache.counts.redis_errors == 0
        assert circuit(cache) is CircuitState.CLOSED


async def test_a_generation_started_while_redis_hangs_is_written_once_it_answers() -> None:
    async with cache_on_own_redis(redis_retry_seconds=0.3) as (cache, server):
        settings = CacheSettings(redis_url=SecretStr(server.url))
        async with listening(cache), opened_cache(settings) as another_process:
            before = await another_process.generation("g")
            server.freeze()
            try:
                assert await cache.new_generation("g") is False  # kept for later
            finally:
                server.thaw()

            async def written() -> bool:
                another_process._l1.clear()  # as a process whose copy expired
                return await another_process.generation("g") != before

            # No request comes to the writer's process: its listener writes it.
            await eventually(written)


async def test_a_lost_subscription_makes_the_process_forget_what_it_holds(
    redis_cache_settings: CacheSettings,
) -> None:
    async with opened_cache(redis_cache_settings) as cache, listening(cache):
        await cache.get_or_load("k", Loads(b"old"), ttl_seconds=TTL)
        assert cache.redis is not None
        await cache.redis.client_kill_filter(_type="pubsub")

        async def resubscribed_and_forgot() -> bool:
            assert cache.redis is not None
            subscribed = (await cache.redis.pubsub_numsub(cache.channel))[0][1]
            return bool(subscribed) and "k" not in cache._l1

        # Invalidations may have been sent while it was not subscribed.
        await eventually(resubscribed_and_forgot)


async def test_a_value_larger_than_l1_is_served_and_kept_in_redis_only(
    redis_cache_settings: CacheSettings, redis_url: str
) -> None:
    small = redis_cache_settings.model_copy(update={"l1_max_bytes": 1024})
    async with opened_cache(small) as cache:
        big = b"x" * 2048
        assert await cache.get_or_load("big", Loads(big), ttl_seconds=TTL) == big
        assert await cache.get_or_load("big", Loads(b"reloaded"), ttl_seconds=TTL) == big
        assert (cache.counts.l2_hits, cache.counts.loads) == (1, 1)
