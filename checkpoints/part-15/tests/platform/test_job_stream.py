"""The job stream's reading loop on a real Redis: what the hostile probe of part 14 broke in
taskiq-redis's own (a group that skipped a backlog or vanished, reclaiming that waited for new
traffic, a vanished or poison message that blocked its batch, a trim that cut unread jobs)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from pydantic import SecretStr
from taskiq.api import run_receiver_task

from shelfwise.platform.job_stream import MAX_DELIVERIES, JobStream, _without_control_labels
from shelfwise.platform.jobs import JobFunction, Jobs, create_jobs
from shelfwise.platform.resilience import CircuitOpenError
from shelfwise.platform.settings import JobSettings

WAIT_SECONDS = 10
GROUP = "taskiq"


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.02)


async def pending(client: redis.Redis, stream: str) -> int:
    summary = await client.xpending(stream, GROUP)
    return int(summary["pending"])


async def until_nothing_is_pending(client: redis.Redis, stream: str) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while await pending(client, stream):
            await asyncio.sleep(0.05)


def recorder(numbers: list[int]) -> JobFunction:
    """A job that records the numbers it ran with in ``numbers``."""

    async def ran(number: int) -> None:
        numbers.append(number)

    return ran


@pytest.fixture
def settings(redis_url: str) -> JobSettings:
    return JobSettings(
        redis_url=SecretStr(redis_url),
        stream=f"test:jobs:{uuid.uuid4().hex}",
        redelivery_seconds=1,
    )


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


class Worker:
    """A worker in the test's loop, on its own ``Jobs``."""

    def __init__(self, settings: JobSettings) -> None:
        self.numbers: list[int] = []
        self.jobs: Jobs = create_jobs(settings, {"tests.ran": recorder(self.numbers)})
        self.receiving: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Worker":
        await self.jobs.start()
        self.receiving = asyncio.create_task(run_receiver_task(self.jobs.broker))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.receiving is not None and isinstance(self.jobs.broker, JobStream)
        self.receiving.cancel()
        await self.jobs.broker.stop_listening()
        while not self.receiving.done():
            self.receiving.cancel()
            await asyncio.wait({self.receiving}, timeout=1)
        await self.jobs.stop()


async def sent(settings: JobSettings, *numbers: int) -> None:
    """Send ``tests.ran`` once per number, from a process that runs no worker."""
    jobs = create_jobs(settings, {"tests.ran": recorder([])})
    for number in numbers:
        await jobs.send("tests.ran", number=number)
    await jobs.stop()


async def taken_by_a_dead_worker(client: redis.Redis, stream: str, count: int) -> list[bytes]:
    """Have a consumer that then dies take ``count`` messages: they stay pending."""
    await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    reply: Any = await client.xreadgroup(GROUP, "dead-worker", {stream: ">"}, count=count)
    batches = reply.values() if isinstance(reply, dict) else [batch for _, batch in reply]
    return [entry_id for batch in batches for entry_id, _ in batch]


async def test_jobs_sent_before_any_worker_started_are_run(
    settings: JobSettings,
) -> None:
    await sent(settings, 1, 2)  # no consumer group exists yet
    async with Worker(settings) as worker:
        await eventually(lambda: sorted(worker.numbers) == [1, 2])


async def test_a_worker_recreates_a_lost_group_and_runs_the_jobs_sent_meanwhile(
    settings: JobSettings, client: redis.Redis
) -> None:
    async with Worker(settings) as worker:
        await sent(settings, 1)
        await eventually(lambda: worker.numbers == [1])
        await client.delete(settings.stream)  # as if Redis restarted empty
        await sent(settings, 2, 3)
        await eventually(lambda: sorted(worker.numbers) == [1, 2, 3])


async def test_a_dead_workers_jobs_are_run_again_with_no_new_traffic(
    settings: JobSettings, client: redis.Redis
) -> None:
    await sent(settings, 1, 2)
    await taken_by_a_dead_worker(client, settings.stream, count=2)
    async with Worker(settings) as worker:  # redelivery after 1 s; nothing else is sent
        await eventually(lambda: sorted(worker.numbers) == [1, 2])


async def test_a_pending_job_the_stream_lost_does_not_hold_back_the_others(
    settings: JobSettings, client: redis.Redis
) -> None:
    await sent(settings, 1, 2, 3)
    first, *_ = await taken_by_a_dead_worker(client, settings.stream, count=3)
    await client.xdel(settings.stream, first)
    async with Worker(settings) as worker:
        await eventually(lambda: sorted(worker.numbers) == [2, 3])
        await until_nothing_is_pending(client, settings.stream)


async def test_a_message_handed_out_too_often_becomes_a_dead_letter_and_runs_no_more(
    settings: JobSettings, client: redis.Redis
) -> None:
    await sent(settings, 1)
    [entry_id] = await taken_by_a_dead_worker(client, settings.stream, count=1)
    for _ in range(MAX_DELIVERIES - 1):  # each claim is one more delivery
        await client.xclaim(settings.stream, GROUP, "dead-worker", 0, [entry_id])
    async with Worker(settings) as worker:
        await until_nothing_is_pending(client, settings.stream)
        [letter] = await worker.jobs.dead_letters.recent(10)
        await asyncio.sleep(0.2)
        assert worker.numbers == []
    assert letter.task_name == "tests.ran"
    assert letter.error.startswith("PoisonMessage")


def test_taskiqs_control_labels_are_stripped_and_the_rest_bounded() -> None:
    message = {
        "task_id": "1",
        "task_name": "tests.ran",
        "labels": {"ack_type": "bogus", "queue_name": "elsewhere", "tenant_id": "x" * 1000},
        "args": [],
        "kwargs": {},
    }
    labels = json.loads(_without_control_labels(json.dumps(message).encode()))["labels"]
    assert labels == {"tenant_id": "x" * 200}
    assert _without_control_labels(b"not json") == b"not json"


async def test_a_label_never_chooses_where_a_message_goes(
    settings: JobSettings, client: redis.Redis
) -> None:
    jobs = create_jobs(settings, {"tests.ran": recorder([])})
    task = jobs.broker.find_task("tests.ran")
    assert task is not None
    await task.kicker().with_labels(queue_name="elsewhere").kiq(number=1)
    await jobs.stop()
    assert await client.xlen(settings.stream) == 1
    assert await client.exists("elsewhere") == 0


async def test_only_handled_jobs_are_trimmed(settings: JobSettings, client: redis.Redis) -> None:
    await sent(settings, 1, 2, 3)
    async with Worker(settings) as worker:
        assert isinstance(worker.jobs.broker, JobStream)
        await eventually(lambda: len(worker.numbers) == 3)
        await sent(settings, 4)  # and one more, perhaps not read yet
        await worker.jobs.broker.trim_handled()
        await eventually(lambda: len(worker.numbers) == 4)
    entries: Any = await client.xrange(settings.stream)
    remaining = [int(json.loads(fields[b"data"])["kwargs"]["number"]) for _, fields in entries]
    assert 1 not in remaining and 2 not in remaining


async def test_a_backlog_with_no_worker_is_never_trimmed(
    settings: JobSettings, client: redis.Redis
) -> None:
    await sent(settings, *range(10))
    await client.xgroup_create(settings.stream, GROUP, id="0")
    stream = JobStream(
        settings.redis_url.get_secret_value() if settings.redis_url else "",
        stream=settings.stream,
        redelivery_ms=1000,
        poisoned=lambda *_: asyncio.sleep(0),
    )
    assert await stream.trim_handled() == 0
    assert await client.xlen(settings.stream) == 10
    await stream.shutdown()


async def test_sends_to_a_redis_that_is_down_fail_fast_once_the_breaker_opens() -> None:
    settings = JobSettings(redis_url=SecretStr("redis://127.0.0.1:1/0"))
    jobs = create_jobs(settings, {"tests.ran": recorder([])})
    failures = []
    for _ in range(3):
        with pytest.raises(Exception) as raised:
            await jobs.send("tests.ran", number=1)
        failures.append(raised.value)
    assert not any(isinstance(failure, CircuitOpenError) for failure in failures)
    with pytest.raises(CircuitOpenError):
        await jobs.send("tests.ran", number=1)
    await jobs.stop()


async def test_a_stopping_worker_hands_back_what_it_took_and_did_not_run(
    settings: JobSettings, client: redis.Redis
) -> None:
    await sent(settings, 1, 2)
    jobs = create_jobs(settings, {"tests.ran": recorder([])})
    stream = jobs.broker
    assert isinstance(stream, JobStream)
    await jobs.start()
    taken = [message async for message in _first(stream.listen(), 2)]  # read, never run
    assert len(taken) == 2
    await stream.leave()

    assert await pending(client, settings.stream) == 0
    [group] = await client.xinfo_groups(settings.stream)
    assert group["consumers"] == 0
    async with Worker(settings) as worker:  # another worker runs them at once
        await eventually(lambda: sorted(worker.numbers) == [1, 2])
    await jobs.stop()


async def _first(messages: AsyncIterator[Any], count: int) -> AsyncIterator[Any]:
    async for message in messages:
        yield message
        count -= 1
        if count == 0:
            return
