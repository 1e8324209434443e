"""Cached reads for the current tenant: keys are built from the tenant context and nothing else.

No method takes a tenant id. A key is ``v1:{tenant}:{entity}@{generation}:{item}``, and its
tenant is always ``current_tenant_id()``: code running for tenant A cannot name, read or
invalidate tenant B's entries, and code running for no tenant fails (``NoTenantError``).
``v1`` is the format's version: a release that changes what is cached changes it, and the old
entries are simply never read again.

Every write path calls ``changed(entity)`` after its commit: that starts a new generation of
the tenant's entity, in every process, and all of its cached reads are read afresh.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Self
from uuid import UUID

from pydantic import BaseModel
from starlette.responses import Response

from shelfwise.platform.cache import TwoLevelCache
from shelfwise.platform.settings import Settings
from shelfwise.tenancy.context import current_tenant_id

KEY_VERSION = "v1"
ENTITY = re.compile(r"[a-z_]{1,40}")


class TenantCache:
    """Cache-aside reads of the current tenant's data, invalidated by entity on every write."""

    def __init__(
        self,
        cache: TwoLevelCache,
        *,
        ttl_seconds: int,
        enabled: bool = True,
        replica_lag_seconds: float = 0.0,
    ) -> None:
        self._cache = cache
        self._ttl_seconds = ttl_seconds
        self._enabled = enabled
        # Non-zero when reads come from a replica (see ``changed``).
        self._replica_lag_seconds = replica_lag_seconds
        self._second_generations: set[asyncio.Task[bool]] = set()

    @classmethod
    def for_settings(cls, cache: TwoLevelCache, settings: Settings) -> Self:
        """The tenant cache the service's ``settings`` describe, for the app and the CLI alike:
        a command that invalidates must do it the way the running processes read."""
        has_replica = settings.database.read_url is not None
        return cls(
            cache,
            ttl_seconds=settings.cache.ttl_seconds,
            enabled=settings.cache.enabled,
            replica_lag_seconds=settings.cache.replica_lag_seconds if has_replica else 0.0,
        )

    async def read(self, entity: str, item: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached bytes of the current tenant's ``item`` of ``entity``, or ``load()``'s."""
        tenant_id = current_tenant_id()
        if not self._enabled:
            return await load()
        generation = await self._cache.generation(_generation_key(tenant_id, entity))
        key = f"{KEY_VERSION}:{tenant_id}:{entity}@{generation}:{item}"
        return await self._cache.get_or_load(key, load, ttl_seconds=self._ttl_seconds)

    async def changed(self, entity: str) -> bool:
        """The current tenant's ``entity`` changed: read every cached value of it afresh.
        Returns whether every process sharing the Redis was told at once.

        With a read replica, a read that comes between the write and the replica catching up
        loads the old rows, and caches them under the new generation. So a second generation
        follows once the replica has caught up, and makes those unreachable too.
        """
        key = _generation_key(current_tenant_id(), entity)
        told = await self._cache.new_generation(key)
        if self._replica_lag_seconds:
            again = asyncio.create_task(self._new_generation_later(key))
            self._second_generations.add(again)
            again.add_done_callback(self._second_generations.discard)
        return told

    async def settled(self) -> bool:
        """Wait for the second generations still due; whether Redis got every one of them."""
        return all(await asyncio.gather(*self._second_generations))

    async def _new_generation_later(self, key: str) -> bool:
        await asyncio.sleep(self._replica_lag_seconds)
        return await self._cache.new_generation(key)


async def cached_json(
    cache: TenantCache,
    entity: str,
    item: str | None,
    produce: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """A JSON response with the body of ``produce()``'s model, from the cache when it has it
    (never cached when ``item`` is ``None``).

    The body itself is cached, so a hit costs neither a query nor a serialization. Declare the
    model as the route's ``response_model``: the API's schema still describes it.
    """

    async def load() -> bytes:
        return (await produce()).model_dump_json().encode()

    body = await load() if item is None else await cache.read(entity, item, load)
    return Response(body, media_type="application/json")


def _generation_key(tenant_id: UUID, entity: str) -> str:
    if not ENTITY.fullmatch(entity):
        raise ValueError(f"an entity name is lower-case letters and underscores: {entity!r}")
    return f"{KEY_VERSION}:{tenant_id}:{entity}:generation"
