"""A two-level cache of bytes: an in-process L1 in front of an optional, shared Redis (L2).

Cache-aside: ``get_or_load(key, load)`` answers from L1, else from Redis, else calls ``load``
and stores what it returns in both. However many requests miss the same key at once, one of
them looks it up and loads it; the others wait for its answer (no stampede on the database).

Keys are opaque here: ``shelfwise.tenancy.cache`` builds them, from the tenant context only.

Invalidation is by generation. A value's key includes the current generation of what it was
read from; a write starts a new generation (``new_generation``), and keys built with the old
one are never read again (they expire). Generations are random tokens, not counters: one that
is lost (evicted, or Redis restarted empty) is replaced by a new token, never by a number old
values were stored under. Each process keeps the generation in its L1 too; a new one is
published on a Redis channel, and every process drops its copy (``listen_for_invalidations``).
Without Redis the cache is this process's L1 alone: right for one process, the quick start.

Redis is a help, never a dependency. When it fails or hangs, the call is skipped (the value is
loaded from the database), its circuit breaker stops calling it for a while, and a new
generation that could not be written is written once Redis answers again.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as redis
from cachetools import TTLCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shelfwise.platform.resilience import CircuitBreaker, CircuitOpenError
from shelfwise.platform.settings import CacheSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class CacheCounts:
    """What the cache did since the process started (exposed at ``/metrics``)."""

    l1_hits: int = 0
    l2_hits: int = 0
    # Values loaded from the database: every lookup that is not a hit, minus the coalesced.
    loads: int = 0
    # Lookups that waited for another request's load of the same key instead of loading.
    coalesced: int = 0
    redis_errors: int = 0


class TwoLevelCache:
    """Bytes by key, in this process (L1) and, given a client, in Redis (L2)."""

    def __init__(
        self,
        *,
        l1_max_bytes: int,
        l1_ttl_seconds: float,
        redis_client: redis.Redis | None = None,
        channel: str = "shelfwise:invalidate",
        retry_seconds: float = 5.0,
    ) -> None:
        self.redis = redis_client
        self.channel = channel
        # L1 is short-lived on purpose: it also bounds how stale a process can be when an
        # invalidation message is lost (Redis restarting, a network blip). Bounded by the
        # bytes it holds, not by entries: one large page must not cost as much as a thousand.
        self._l1: TTLCache[str, bytes] = TTLCache(l1_max_bytes, l1_ttl_seconds, getsizeof=len)
        # One failure is enough to stop: the database can serve every read without the cache.
        self.breaker = CircuitBreaker(
            "the cache", failures=1, reset_seconds=retry_seconds, is_failure=_is_redis_failure
        )
        self._loading: dict[str, asyncio.Future[bytes]] = {}
        # New generations Redis has not heard of yet (it was down when they were started).
        self._unpublished: set[str] = set()
        # Counts every generation dropped or replaced in this process: a generation read from
        # Redis while this moved may already be old, and is not kept.
        self._generation_changes = 0
        self.counts = CacheCounts()

    async def get_or_load(
        self, key: str, load: Callable[[], Awaitable[bytes]], *, ttl_seconds: int
    ) -> bytes:
        """The bytes under ``key``, or what ``load`` returns, stored for ``ttl_seconds`` in Redis
        (and for L1's shorter lifetime here)."""
        if (value := self._l1.get(key)) is not None:
            self.counts.l1_hits += 1
            return value
        if key in self._loading:
            self.counts.coalesced += 1
        while (pending := self._loading.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                # The request that was loading went away (its client hung up): load ourselves,
                # unless it is this request that is being cancelled.
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
        return await self._look_up_once(key, load, ttl_seconds)

    async def generation(self, key: str) -> str:
        """The current generation stored under ``key``; a new one if there is none yet."""
        if (token := self._l1.get(key)) is not None:
            return token.decode()
        await self._publish_pending()
        changes = self._generation_changes
        new = secrets.token_hex(8)
        # SET NX: of two processes that find no generation, the first one's token wins.
        stored = await self._redis_call(lambda client: _set_if_absent(client, key, new))
        token_bytes = stored if stored is not None else new.encode()
        if self._generation_changes != changes:
            # A new generation was started or announced while we asked: ours may be older.
            return (self._l1.get(key) or token_bytes).decode()
        self._keep(key, token_bytes)
        return token_bytes.decode()

    async def new_generation(self, key: str) -> bool:
        """Start a new generation under ``key``: every value stored with an older one is
        never read again, in any process. Returns whether Redis has it now (``False`` without
        Redis, or when it is written later, once Redis answers again)."""
        new = secrets.token_hex(8)
        self._generation_changes += 1
        self._keep(key, new.encode())
        if self.redis is None:
            return False
        if await self._publish(key, new):
            return True
        self._unpublished.add(key)
        logger.warning("cache invalidation delayed: redis unreachable", extra={"key": key})
        return False

    async def listen_for_invalidations(self) -> None:
        """Drop the generations other processes replace; run as a task while the app runs.

        Also writes, as soon as Redis answers again, the generations this process started
        while it could not reach Redis.
        """
        if self.redis is None:
            return
        subscribed = True  # as far as the log is concerned: say when it is lost, once
        while True:
            try:
                async with self.redis.pubsub() as subscription:
                    await subscription.subscribe(self.channel)
                    # Messages sent while we were not subscribed are lost: forget everything
                    # this process holds (after subscribing, so nothing can slip in between).
                    self._generation_changes += 1
                    self._l1.clear()
                    subscribed = True
                    while True:
                        message = await subscription.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None and message["type"] == "message":
                            self._generation_changes += 1
                            self._l1.pop(message["data"].decode(errors="replace"), None)
                        if self._unpublished:  # at most a second after Redis answers again
                            await self._publish_pending()
            except Exception as error:  # this task must outlive any failure: it retries
                if subscribed:
                    subscribed = False
                    error_name = type(error).__name__
                    logger.warning("cache invalidations missed", extra={"error": error_name})
                await asyncio.sleep(1)

    async def _look_up_once(
        self, key: str, load: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            await self._publish_pending()
            value = await self._redis_call(lambda client: _get(client, key))
            found_in_redis = value is not None
            if value is not None:
                self.counts.l2_hits += 1
            else:
                self.counts.loads += 1
                value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # marked as retrieved: nobody may have been waiting
            raise
        finally:
            del self._loading[key]
        self._keep(key, value)
        future.set_result(value)
        if not found_in_redis:
            stored = value
            await self._redis_call(lambda client: client.set(key, stored, ex=ttl_seconds))
        return value

    def _keep(self, key: str, value: bytes) -> None:
        with contextlib.suppress(ValueError):  # larger than all of L1: Redis keeps it
            self._l1[key] = value

    async def _publish(self, key: str, token: str) -> bool:
        async def write(client: redis.Redis) -> bool:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(key, token)
                pipe.publish(self.channel, key)
                await pipe.execute()
            return True

        return bool(await self._redis_call(write))

    async def _publish_pending(self) -> None:
        for key in list(self._unpublished):
            token = self._l1.get(key) or secrets.token_hex(8).encode()
            if not await self._publish(key, token.decode()):
                return
            self._unpublished.discard(key)

    async def _redis_call(self, call: Callable[[redis.Redis], Awaitable[T]]) -> T | None:
        """One Redis call through the breaker; ``None`` when there is no Redis or it failed."""
        if self.redis is None or not self.breaker.admits():
            return None
        try:
            with self.breaker.guard():
                try:
                    return await call(self.redis)
                except RedisConnectionError:
                    # After Redis restarts, each pooled connection fails once ("closed by
                    # server"), and each failure would pause the cache again: one more try, on
                    # a new connection. A hung server's timeout is not tried again.
                    return await call(self.redis)
        except (RedisError, CircuitOpenError) as error:
            self.counts.redis_errors += 1
            logger.warning("cache bypassed: redis failed", extra={"error": type(error).__name__})
            return None


async def _get(client: redis.Redis, key: str) -> bytes | None:
    value = await client.get(key)
    assert not isinstance(value, str)  # the client is made without decode_responses
    return value


async def _set_if_absent(client: redis.Redis, key: str, token: str) -> bytes:
    """Store ``token`` under ``key`` unless a generation is there; return the one that is."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(key, token, nx=True)
        pipe.get(key)
        _, stored = await pipe.execute()
    value: bytes = stored
    return value


def _is_redis_failure(error: BaseException) -> bool:
    return isinstance(error, RedisError)


@contextlib.asynccontextmanager
async def opened_cache(settings: CacheSettings) -> AsyncIterator[TwoLevelCache]:
    """The cache ``settings`` describe, with its Redis connections closed afterwards."""
    client = None
    if settings.redis_url is not None:
        # Every wait bounded: redis-py's default waits forever on a server that hangs.
        client = redis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_connect_timeout_seconds,
        )
    cache = TwoLevelCache(
        l1_max_bytes=settings.l1_max_bytes,
        l1_ttl_seconds=settings.l1_ttl_seconds,
        redis_client=client,
        channel=settings.channel,
        retry_seconds=settings.redis_retry_seconds,
    )
    try:
        yield cache
    finally:
        if client is not None:
            # Closing can fail on a hung or vanished server; nothing is left to do about it.
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
