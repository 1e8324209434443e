"""Tenant cache keys come from the tenant context alone: one tenant can neither read nor
invalidate another's entries, and code running for no tenant cannot use the cache at all."""

import uuid
from collections.abc import Awaitable, Callable

import pytest

from shelfwise.platform.cache import TwoLevelCache
from shelfwise.tenancy.cache import TenantCache
from shelfwise.tenancy.context import NoTenantError, tenant_context

TENANT_A = uuid.UUID(int=0xA)
TENANT_B = uuid.UUID(int=0xB)


def new_cache() -> TenantCache:
    return TenantCache(TwoLevelCache(l1_max_bytes=100_000, l1_ttl_seconds=60), ttl_seconds=60)


def returning(value: bytes) -> Callable[[], Awaitable[bytes]]:
    async def load() -> bytes:
        return value

    return load


async def test_the_same_entity_and_item_are_different_entries_for_each_tenant() -> None:
    cache = new_cache()
    with tenant_context(TENANT_A):
        await cache.read("book", "1", returning(b"A's book 1"))
    with tenant_context(TENANT_B):
        seen_by_b = await cache.read("book", "1", returning(b"B's book 1"))
    with tenant_context(TENANT_A):
        seen_by_a = await cache.read("book", "1", returning(b"reloaded"))

    assert (seen_by_a, seen_by_b) == (b"A's book 1", b"B's book 1")


async def test_a_change_invalidates_only_the_current_tenants_entity() -> None:
    cache = new_cache()
    for tenant in (TENANT_A, TENANT_B):
        with tenant_context(tenant):
            await cache.read("book", "1", returning(b"old"))
            await cache.read("author", "1", returning(b"old"))
    with tenant_context(TENANT_A):
        await cache.changed("book")
        assert await cache.read("book", "1", returning(b"new")) == b"new"
        assert await cache.read("author", "1", returning(b"new")) == b"old"
    with tenant_context(TENANT_B):
        assert await cache.read("book", "1", returning(b"new")) == b"old"


async def test_outside_a_tenant_context_the_cache_refuses() -> None:
    cache = new_cache()
    with pytest.raises(NoTenantError):
        await cache.read("book", "1", returning(b"x"))
    with pytest.raises(NoTenantError):
        await cache.changed("book")


async def test_a_disabled_cache_loads_every_time_but_still_needs_a_tenant() -> None:
    plain = TwoLevelCache(l1_max_bytes=100_000, l1_ttl_seconds=60)
    cache = TenantCache(plain, ttl_seconds=60, enabled=False)
    with tenant_context(TENANT_A):
        await cache.read("book", "1", returning(b"first"))
        assert await cache.read("book", "1", returning(b"second")) == b"second"
    with pytest.raises(NoTenantError):
        await cache.read("book", "1", returning(b"x"))


async def test_with_a_replica_a_second_generation_drops_what_a_lagging_read_cached() -> None:
    cache = TenantCache(
        TwoLevelCache(l1_max_bytes=100_000, l1_ttl_seconds=60),
        ttl_seconds=60,
        replica_lag_seconds=0.05,
    )
    with tenant_context(TENANT_A):
        await cache.read("book", "1", returning(b"old"))
        await cache.changed("book")
        # The replica has not replayed the write yet: this read loads the old row.
        assert await cache.read("book", "1", returning(b"old")) == b"old"
        await cache.settled()
        assert await cache.read("book", "1", returning(b"new")) == b"new"


@pytest.mark.parametrize("entity", ["", "Book", "book:1", "book\n", "a" * 41, "b\x00"])
async def test_an_entity_name_cannot_reach_into_the_key_format(entity: str) -> None:
    with tenant_context(TENANT_A), pytest.raises(ValueError, match="entity name"):
        await new_cache().read(entity, "1", returning(b"x"))
