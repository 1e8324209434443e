"""Tenant jobs: the tenant travels with the message, and a job without one never runs."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from taskiq import InMemoryBroker

from shelfwise.platform.jobs import (
    JobContextMiddleware,
    LabelProvider,
    MemoryDeadLetters,
    MemoryDelays,
    RetryPolicy,
)
from shelfwise.tenancy.context import current_tenant_id, tenant_context
from shelfwise.tenancy.jobs import TENANT_ID, tenant_job, tenant_label

WAIT_SECONDS = 10


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.01)


async def started(
    providers: tuple[LabelProvider, ...],
) -> tuple[InMemoryBroker, MemoryDeadLetters]:
    broker = InMemoryBroker()
    dead = MemoryDeadLetters()
    policy = RetryPolicy(max_attempts=3, base_seconds=0.01, cap_seconds=0.02)
    broker.add_middlewares(JobContextMiddleware(dead, MemoryDelays(broker), policy, providers))
    await broker.startup()
    return broker, dead


@pytest.fixture
async def tenant_broker() -> AsyncIterator[tuple[InMemoryBroker, MemoryDeadLetters]]:
    broker, dead = await started((tenant_label,))
    yield broker, dead
    await broker.wait_all()
    await broker.shutdown()


async def test_a_job_runs_for_the_tenant_that_sent_it(
    tenant_broker: tuple[InMemoryBroker, MemoryDeadLetters],
) -> None:
    broker, _ = tenant_broker
    ran_for: list[uuid.UUID] = []

    @tenant_job
    async def record(order: int) -> None:
        ran_for.append(current_tenant_id())

    job = broker.register_task(record, task_name="record")
    a, b = uuid.uuid4(), uuid.uuid4()
    for tenant in (a, b, a):
        with tenant_context(tenant):
            await job.kiq(1)
    await eventually(lambda: len(ran_for) == 3)
    assert ran_for == [a, b, a]


async def test_a_job_sent_without_a_tenant_never_runs_even_in_a_tenants_process() -> None:
    # A sender without the tenant label; the in-process broker runs the job in the sender's
    # context, where a tenant is set: the job must not take it.
    broker, dead = await started(())
    ran: list[uuid.UUID] = []

    @tenant_job
    async def record(order: int) -> None:
        ran.append(current_tenant_id())

    job = broker.register_task(record, task_name="record")
    try:
        with tenant_context(uuid.uuid4()):
            await job.kiq(1)
        await eventually(lambda: bool(dead._letters))
        await asyncio.sleep(0.1)
        [letter] = await dead.recent(10)
        assert (letter.attempts, ran) == (1, [])
        assert "MissingTenantError" in letter.error
        assert TENANT_ID not in letter.labels
    finally:
        await broker.wait_all()
        await broker.shutdown()


@pytest.mark.parametrize(
    "tenant",
    [
        "not-a-uuid",
        "",
        "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9",
    ],  # the last: not canonical
)
async def test_a_malformed_tenant_fails_closed(tenant: str) -> None:
    broker, dead = await started((lambda: {TENANT_ID: tenant},))
    ran: list[uuid.UUID] = []

    @tenant_job
    async def record(order: int) -> None:
        ran.append(current_tenant_id())

    job = broker.register_task(record, task_name="record")
    try:
        await job.kiq(1)
        await eventually(lambda: bool(dead._letters))
        assert ran == []
    finally:
        await broker.wait_all()
        await broker.shutdown()
