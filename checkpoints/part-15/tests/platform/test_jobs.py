"""The job machinery on taskiq: context carried from sender to job, retries with jittered
backoff, dead letters; in process and on a real Redis stream with a worker in the test's loop."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import redis.asyncio as redis
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, InMemoryBroker
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from shelfwise.platform.jobs import (
    ATTEMPT,
    REQUEST_ID,
    DeadLetter,
    DeadLetters,
    JobContextMiddleware,
    MemoryDeadLetters,
    MemoryDelays,
    PermanentJobError,
    RedisDeadLetters,
    RedisDelays,
    RetryPolicy,
    create_jobs,
    current_job_labels,
)
from shelfwise.platform.settings import JobSettings

FAST = RetryPolicy(max_attempts=3, base_seconds=0.05, cap_seconds=0.2)
WAIT_SECONDS = 10


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.01)


def test_full_jitter_stays_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=10.0)
    assert [policy.delay(attempt, rng=lambda: 1.0) for attempt in (1, 2, 3, 4, 5)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
    ]
    assert policy.delay(3, rng=lambda: 0.0) == 0.0
    draws = {policy.delay(3) for _ in range(50)}
    assert len(draws) > 40 and all(0 <= draw <= 4.0 for draw in draws)


class Flaky:
    """A job body that fails its first ``failures`` runs, recording each run's labels."""

    def __init__(self, failures: int, error: type[Exception] = RuntimeError) -> None:
        self.failures = failures
        self.error = error
        self.runs: list[dict[str, str]] = []

    def on(
        self, broker: AsyncBroker, name: str
    ) -> AsyncTaskiqDecoratedTask[[int], Coroutine[Any, Any, int]]:
        """This body, as a job of ``broker``'s named ``name``."""

        async def job(order: int) -> int:
            self.runs.append(dict(current_job_labels() or {}))
            if len(self.runs) <= self.failures:
                raise self.error(f"attempt {len(self.runs)} of order {order} failed")
            return order

        return broker.register_task(job, task_name=name)


@pytest.fixture
async def memory_broker() -> AsyncIterator[tuple[InMemoryBroker, MemoryDeadLetters]]:
    broker = InMemoryBroker()
    dead = MemoryDeadLetters()
    broker.add_middlewares(JobContextMiddleware(dead, MemoryDelays(broker), FAST))
    await broker.startup()
    yield broker, dead
    await broker.wait_all()
    await broker.shutdown()


async def test_a_failing_job_runs_again_until_it_succeeds(
    memory_broker: tuple[InMemoryBroker, MemoryDeadLetters],
) -> None:
    broker, dead = memory_broker
    body = Flaky(failures=2)
    job = body.on(broker, "flaky")
    await job.kiq(7)
    await eventually(lambda: len(body.runs) == 3)
    await asyncio.sleep(0.3)  # no fourth run comes
    assert [run[ATTEMPT] for run in body.runs] == ["1", "2", "3"]
    assert await dead.recent(10) == []


async def test_a_job_out_of_attempts_becomes_a_dead_letter_that_can_be_sent_again(
    memory_broker: tuple[InMemoryBroker, MemoryDeadLetters],
) -> None:
    broker, dead = memory_broker
    body = Flaky(failures=3)
    job = body.on(broker, "flaky")
    await job.kiq(7)
    await eventually(lambda: len(body.runs) == 3)
    await eventually(lambda: bool(dead._letters))
    [letter] = await dead.recent(10)
    assert (letter.task_name, letter.attempts) == ("flaky", 3)
    assert "attempt 3 of order 7 failed" in letter.error

    assert await dead.take(letter.id) == letter
    assert await dead.take(letter.id) is None  # taken once


async def test_a_permanent_failure_is_not_retried(
    memory_broker: tuple[InMemoryBroker, MemoryDeadLetters],
) -> None:
    broker, dead = memory_broker
    body = Flaky(failures=1, error=PermanentJobError)
    job = body.on(broker, "permanent")
    await job.kiq(1)
    await eventually(lambda: bool(dead._letters))
    await asyncio.sleep(0.3)
    assert len(body.runs) == 1
    assert (await dead.recent(1))[0].attempts == 1


@pytest.fixture
async def redis_jobs(
    redis_url: str,
) -> AsyncIterator[tuple[RedisStreamBroker, DeadLetters, RedisDelays]]:
    stream = f"test:jobs:{uuid.uuid4().hex}"
    client = redis.from_url(redis_url)
    broker = RedisStreamBroker(
        redis_url, queue_name=stream, xread_block=100, unacknowledged_lock_timeout=1
    )
    dead = RedisDeadLetters(client, f"{stream}:dead")
    delays = RedisDelays(client, stream)
    broker.add_middlewares(JobContextMiddleware(dead, delays, FAST))
    await broker.startup()
    receiving = asyncio.create_task(run_receiver_task(broker))
    promoting = asyncio.create_task(delays.keep_promoting(0.02))
    yield broker, dead, delays
    for task in (receiving, promoting):
        task.cancel()
    try:
        # A cancelled receiver still waits, shielded, for its pending read, which only a
        # message ends (taskiq 0.13): one sent too early is read before the wait begins, so
        # send until both have ended. Bounded, generously: a busy machine is slow, not stuck.
        async with asyncio.timeout(3 * WAIT_SECONDS):
            while not (receiving.done() and promoting.done()):
                await client.xadd(stream, {"data": b"{}"})
                await asyncio.wait({receiving, promoting}, timeout=0.2)
    finally:
        # Whatever happened, nothing is left open for the next test to trip over.
        async with asyncio.timeout(WAIT_SECONDS):
            await broker.shutdown()
        await client.aclose()


async def test_on_redis_a_job_runs_in_its_senders_trace_and_request(
    redis_jobs: tuple[RedisStreamBroker, DeadLetters, RedisDelays],
) -> None:
    broker, _, _ = redis_jobs
    seen: list[Any] = []

    async def body(order: int) -> None:
        span = trace.get_current_span().get_span_context()
        seen.append((span.trace_id, structlog.contextvars.get_contextvars().get(REQUEST_ID)))

    job = broker.register_task(body, task_name="traced")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as request_span:
        structlog.contextvars.bind_contextvars(request_id="req-42")
        try:
            await job.kiq(1)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
    await eventually(lambda: bool(seen))
    assert seen == [(request_span.get_span_context().trace_id, "req-42")]


async def test_on_redis_a_retry_waits_in_the_sorted_set_then_runs(
    redis_jobs: tuple[RedisStreamBroker, DeadLetters, RedisDelays],
) -> None:
    broker, dead, _ = redis_jobs
    body = Flaky(failures=2)
    job = body.on(broker, "flaky")
    await job.kiq(3)
    await eventually(lambda: len(body.runs) == 3)
    assert [run[ATTEMPT] for run in body.runs] == ["1", "2", "3"]
    assert await dead.recent(10) == []


async def test_on_redis_dead_letters_are_kept_and_taken_once(
    redis_jobs: tuple[RedisStreamBroker, DeadLetters, RedisDelays],
) -> None:
    broker, dead, _ = redis_jobs
    body = Flaky(failures=5)
    job = body.on(broker, "flaky")
    await job.kiq(9)
    letters: list[Any] = []

    async def some() -> None:
        letters.extend(await dead.recent(10))

    async with asyncio.timeout(WAIT_SECONDS):
        while not letters:
            await some()
            await asyncio.sleep(0.02)
    [letter] = letters
    assert (letter.task_name, letter.attempts, len(body.runs)) == ("flaky", 3, 3)
    assert await dead.take(letter.id) is not None
    assert await dead.take(letter.id) is None
    assert await dead.recent(10) == []


async def test_a_replay_that_cannot_be_sent_keeps_its_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = create_jobs(JobSettings(), {})
    letter = DeadLetter(
        id="job-1",
        task_id="job-1",
        task_name="orders.record_sale",
        labels={ATTEMPT: "5"},
        attempts=5,
        error="RuntimeError: down",
        failed_at=0.0,
        message='{"task_id": "job-1", "task_name": "orders.record_sale", "labels": {}, '
        '"args": [], "kwargs": {}}',
    )
    await jobs.dead_letters.add(letter)

    async def refused(_: object) -> None:
        raise ConnectionError("the queue's Redis is down")

    monkeypatch.setattr(jobs.broker, "kick", refused)
    with pytest.raises(ConnectionError):
        await jobs.replay("job-1")
    assert await jobs.dead_letters.recent(10) == [letter]


async def test_stopping_cancels_a_job_still_running_after_the_wait() -> None:
    started, finished = asyncio.Event(), []

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)
        finished.append(True)

    jobs = create_jobs(JobSettings(), {"tests.slow": slow})
    await jobs.start()
    await jobs.send("tests.slow")
    await started.wait()
    async with asyncio.timeout(WAIT_SECONDS):
        await jobs.stop(wait_seconds=0.1)
    assert finished == []
    assert not jobs.context.running
