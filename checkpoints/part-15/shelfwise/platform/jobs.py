"""Background jobs on taskiq: the broker, and what every job carries, retries and leaves behind.

A job is sent with labels: the W3C trace context, the request id, and what the features add
through label providers (the tenant: ``shelfwise.tenancy.jobs``). Before the job's code runs,
the worker's middleware makes them the job's context again: its log lines carry the request
id, and its spans join the request's trace.

A job that raises is sent again after a delay with full jitter, up to its attempts; one that
raises ``PermanentJobError``, or runs out of attempts, becomes a dead letter: kept, with its
message, for an operator to read and send again (``python -m shelfwise jobs-dead-*``).

Delivery is at least once. A worker killed after the work and before the acknowledgement
leaves the message to be delivered again, so every job must be safe to run twice.
"""

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate
from redis.asyncio import Redis
from taskiq import (
    AsyncBroker,
    AsyncTaskiqDecoratedTask,
    BrokerMessage,
    InMemoryBroker,
    TaskiqMessage,
    TaskiqMiddleware,
    TaskiqResult,
)

from shelfwise.platform.job_stream import LABEL_LENGTH, MAX_DELIVERIES, JobStream, every
from shelfwise.platform.resilience import CircuitBreaker
from shelfwise.platform.settings import JobSettings

logger = logging.getLogger(__name__)

ATTEMPT = "attempt"
REQUEST_ID = "request_id"

LabelProvider = Callable[[], Mapping[str, str]]
# How long stopping waits for the jobs this process is running.
STOP_WAIT_SECONDS = 30.0
# A Redis that does not answer fails a call within seconds instead of holding it forever.
# The socket timeout stays above the broker's blocking read of the stream (2 s).
REDIS_TIMEOUTS: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 10.0}


class PermanentJobError(Exception):
    """A failure that running the job again cannot fix: it becomes a dead letter at once."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how long after, a failed job runs again."""

    max_attempts: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1 for the first): "full jitter",
        a uniform draw up to an exponentially growing cap, so that jobs that failed together
        (a webhook endpoint that was down) do not all come back at the same moment."""
        return rng() * min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed for good, and why."""

    id: str  # the dead letter's own: what an operator names to replay it
    task_id: str
    task_name: str
    labels: dict[str, str]
    attempts: int
    error: str
    failed_at: float
    message: str = field(repr=False)  # the message as sent, to send it again


class DeadLetters(Protocol):
    """Where jobs that failed for good are kept."""

    async def add(self, letter: DeadLetter) -> None: ...

    async def recent(self, limit: int) -> list[DeadLetter]: ...

    async def find(self, letter_id: str) -> DeadLetter | None: ...

    async def take(self, letter_id: str) -> DeadLetter | None: ...

    async def purge(self) -> int: ...


class MemoryDeadLetters:
    """Dead letters in this process, the newest ``capacity`` of them: the quick start's."""

    def __init__(self, capacity: int = 1000) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=capacity)

    async def add(self, letter: DeadLetter) -> None:
        self._letters.append(letter)

    async def recent(self, limit: int) -> list[DeadLetter]:
        return list(self._letters)[-limit:][::-1]

    async def find(self, letter_id: str) -> DeadLetter | None:
        return next((letter for letter in self._letters if letter.id == letter_id), None)

    async def take(self, letter_id: str) -> DeadLetter | None:
        letter = await self.find(letter_id)
        if letter is not None:
            self._letters.remove(letter)
        return letter

    async def purge(self) -> int:
        count = len(self._letters)
        self._letters.clear()
        return count


class RedisDeadLetters:
    """Dead letters in a Redis stream, the newest ``capacity`` of them (approximately)."""

    def __init__(self, redis: Redis, stream: str, capacity: int = 10_000) -> None:
        self._redis = redis
        self._stream = stream
        self._capacity = capacity

    async def add(self, letter: DeadLetter) -> None:
        await self._redis.xadd(
            self._stream,
            {"letter": json.dumps(asdict(letter))},
            maxlen=self._capacity,
            approximate=True,
        )

    async def recent(self, limit: int) -> list[DeadLetter]:
        entries = await self._redis.xrevrange(self._stream, count=limit)
        letters = (_letter(entry_id, fields) for entry_id, fields in entries or [])
        return [letter for letter in letters if letter is not None]

    async def find(self, letter_id: str) -> DeadLetter | None:
        entries = await self._redis.xrange(self._stream, min=letter_id, max=letter_id)
        return _letter(*entries[0]) if entries else None

    async def take(self, letter_id: str) -> DeadLetter | None:
        letter = await self.find(letter_id)
        if letter is None or not await self._redis.xdel(self._stream, letter_id):
            return None  # not there, or another operator took it first
        return letter

    async def purge(self) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xlen(self._stream)
            pipe.delete(self._stream)
            count, _ = await pipe.execute()
        return int(count)


def _letter(entry_id: bytes | str | None, fields: Mapping[Any, Any] | None) -> DeadLetter | None:
    """The dead letter in a stream entry; ``None`` for an entry that holds none (not one
    ShelfWise wrote: it is skipped, not fatal to the listing)."""
    raw = (fields or {}).get(b"letter", (fields or {}).get("letter"))
    try:
        document = json.loads(raw)
        document["id"] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return DeadLetter(**document)
    except (TypeError, ValueError):
        return None


_job_labels: ContextVar[Mapping[str, str] | None] = ContextVar("shelfwise_job", default=None)


def current_job_labels() -> Mapping[str, str] | None:
    """The labels of the job the running code belongs to, or ``None`` outside a job."""
    return _job_labels.get()


class JobContextMiddleware(TaskiqMiddleware):
    """Carries context from the sender to the job, and decides what happens to a failure."""

    def __init__(
        self,
        dead_letters: DeadLetters,
        delays: "Delays",
        retry: RetryPolicy,
        label_providers: Sequence[LabelProvider] = (),
    ) -> None:
        super().__init__()
        self._dead_letters = dead_letters
        self._delays = delays
        self._retry = retry
        self._label_providers = label_providers
        # The tasks running a job in this process now, each until its message is acknowledged.
        self.running: set[asyncio.Task[Any]] = set()

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        labels: dict[str, str] = {}
        propagate.inject(labels)  # traceparent (and tracestate) of the current span
        request_id = structlog.contextvars.get_contextvars().get(REQUEST_ID)
        if request_id is not None:
            labels[REQUEST_ID] = str(request_id)
        for provider in self._label_providers:
            labels.update(provider())
        labels.setdefault(ATTEMPT, str(message.labels.get(ATTEMPT, 1)))
        message.labels.update({name: value[:LABEL_LENGTH] for name, value in labels.items()})
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        # Never raises: a failure here would leave the message unacknowledged, to be delivered
        # again and again. Checks that may fail (a job without a tenant) run inside the job.
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        labels = {name: str(value) for name, value in message.labels.items()}
        _job_labels.set(labels)  # every job runs in a task of its own: nothing to reset
        structlog.contextvars.bind_contextvars(
            job=message.task_name, job_id=message.task_id, **_known(labels, REQUEST_ID)
        )
        otel_context.attach(propagate.extract(labels))
        return message

    async def on_error(
        self,
        message: TaskiqMessage,
        result: TaskiqResult[Any],
        exception: BaseException,
    ) -> None:
        attempt = _attempt_of(message.labels)
        permanent = isinstance(exception, PermanentJobError)
        if permanent or attempt >= self._retry.max_attempts:
            await self._dead_letters.add(self._dead_letter(message, attempt, exception))
            logger.error(
                "job failed for good",
                extra={
                    "job": message.task_name,
                    "attempts": attempt,
                    "error": repr(exception),
                },
            )
            return
        delay = self._retry.delay(attempt)
        logger.warning(
            "job failed, will run again",
            extra={
                "job": message.task_name,
                "attempt": attempt,
                "in_seconds": round(delay, 3),
            },
        )
        await self._send_again(message, attempt + 1, delay)

    async def _send_again(self, message: TaskiqMessage, attempt: int, delay: float) -> None:
        """Send ``message`` again as attempt ``attempt``, ``delay`` seconds from now."""
        message.labels[ATTEMPT] = str(attempt)
        await self._delays.later(self.broker.formatter.dumps(message), delay)

    def _dead_letter(
        self, message: TaskiqMessage, attempts: int, exception: BaseException
    ) -> DeadLetter:
        return DeadLetter(
            id=message.task_id,
            task_id=message.task_id,
            task_name=message.task_name,
            labels={name: str(value) for name, value in message.labels.items()},
            attempts=attempts,
            error=f"{type(exception).__name__}: {exception}"[:500],
            failed_at=time.time(),
            message=self.broker.formatter.dumps(message).message.decode(),
        )


def _attempt_of(labels: Mapping[str, Any]) -> int:
    try:
        return max(1, int(labels.get(ATTEMPT, 1)))
    except (TypeError, ValueError):
        return 1


def _known(labels: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: labels[name] for name in names if name in labels}


class Delays(Protocol):
    """Where a message waits before it is sent again."""

    async def later(self, message: BrokerMessage, delay: float) -> None: ...


class MemoryDelays:
    """A timer in this process. A process that stops first loses the retry, as it loses every
    job it holds: the quick start's trade-off."""

    def __init__(self, broker: AsyncBroker) -> None:
        self._broker = broker
        self._waiting: set[asyncio.Task[None]] = set()

    async def later(self, message: BrokerMessage, delay: float) -> None:
        async def send() -> None:
            await asyncio.sleep(delay)
            await self._broker.kick(message)

        task = asyncio.create_task(send())
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)


# Moves the messages that are due from the sorted set onto the stream, in one step: a message
# is never on both, and never on neither, whatever happens to the worker that runs it.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, message in ipairs(due) do
  redis.call('ZREM', KEYS[1], message)
  redis.call('XADD', KEYS[2], '*', 'data', message)
end
return #due
"""


class RedisDelays:
    """A Redis sorted set of messages, scored by when each is due. ``promote`` moves the due
    ones onto the job stream; the worker runs it every ``interval`` seconds."""

    def __init__(self, redis: Redis, stream: str, *, batch: int = 100) -> None:
        self._redis = redis
        self._stream = stream
        self._key = f"{stream}:delayed"
        self._batch = batch
        self._promote = redis.register_script(PROMOTE)

    async def later(self, message: BrokerMessage, delay: float) -> None:
        await self._redis.zadd(self._key, {message.message: time.time() + delay})

    async def promote(self) -> int:
        """Move the messages that are due onto the stream; how many there were."""
        moved = await self._promote(
            keys=[self._key, self._stream],
            args=[time.time(), self._batch],
        )
        return int(moved)

    async def keep_promoting(self, interval: float) -> None:
        """``promote`` every ``interval`` seconds, until cancelled."""
        await every(interval, self.promote, "delayed jobs could not be promoted")


def poison_letter(entry_id: str, data: bytes) -> DeadLetter:
    """A dead letter for a message no worker could finish (see ``JobStream``)."""
    try:
        message = json.loads(data)
        labels = {str(name): str(value) for name, value in dict(message["labels"]).items()}
        task_id, task_name = str(message["task_id"]), str(message["task_name"])
    except (ValueError, TypeError, KeyError):
        labels, task_id, task_name = {}, entry_id, "?"
    return DeadLetter(
        id=entry_id,
        task_id=task_id,
        task_name=task_name,
        labels=labels,
        attempts=_attempt_of(labels),
        error=f"PoisonMessage: handed out {MAX_DELIVERIES} times, never acknowledged",
        failed_at=time.time(),
        message=data.decode(errors="replace"),
    )


JobFunction = Callable[..., Awaitable[None]]


class UnknownJobError(LookupError):
    """No job of this name is registered."""


class JobsNotSentError(Exception):
    """Some of the jobs sent together did not reach the queue."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"not sent: {', '.join(names)}")
        self.names = names


@dataclass
class Jobs:
    """A process's broker, and where its retries wait and its dead letters go."""

    broker: AsyncBroker
    dead_letters: DeadLetters
    delays: Delays
    context: JobContextMiddleware
    redis: Redis | None = None  # the stream's, for the worker's promoter; None in process
    # After 3 failed sends in a row, sends fail at once for 5 s: a Redis that is down costs an
    # order no time, and one trial send a while tells when it is back.
    breaker: CircuitBreaker = field(
        default_factory=lambda: CircuitBreaker("the job queue", failures=3, reset_seconds=5.0)
    )

    async def send(self, name: str, **arguments: int | str) -> None:
        """Send the job ``name`` with ``arguments`` (JSON scalars), labelled with the sender's
        context. In process it runs as a task of its own; on a stream, in a worker."""
        await self.send_all({name: arguments})

    async def send_all(self, sends: Mapping[str, Mapping[str, int | str]]) -> None:
        """Send several jobs at once, as one call to the queue: the breaker counts it once, so
        its single trial after an outage carries them all. Raises ``JobsNotSentError`` naming
        those that failed, or ``CircuitOpenError`` at once while the queue's Redis is failing."""
        tasks = {name: self._task(name) for name in sends}
        with self.breaker.guard():
            outcomes = await asyncio.gather(
                *(tasks[name].kiq(**arguments) for name, arguments in sends.items()),
                return_exceptions=True,
            )
            failed = {
                name: outcome
                for name, outcome in zip(sends, outcomes, strict=True)
                if isinstance(outcome, BaseException)
            }
            if failed:
                raise JobsNotSentError(sorted(failed)) from next(iter(failed.values()))

    def _task(self, name: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
        task = self.broker.find_task(name)
        if task is None:
            raise UnknownJobError(name)
        return task

    async def replay(self, letter_id: str) -> DeadLetter | None:
        """Send dead letter ``letter_id`` again as a first attempt, and take it off the dead
        letters; ``None`` if there is no such letter (or another operator took it)."""
        letter = await self.dead_letters.find(letter_id)
        if letter is None:
            return None
        labels = letter.labels | {ATTEMPT: "1"}
        message = json.loads(letter.message)
        message["labels"] = labels
        # Sent first, taken off second: a failure in between leaves a letter that was sent
        # (a repeat, which jobs allow), never one that was lost.
        await self.broker.kick(
            BrokerMessage(
                task_id=letter.task_id,
                task_name=letter.task_name,
                message=json.dumps(message).encode(),
                labels=labels,
            )
        )
        await self.dead_letters.take(letter_id)
        return letter

    async def start(self) -> None:
        await self.broker.startup()

    async def settled(self) -> None:
        """Wait until the jobs this process has started have run and been acknowledged (a
        retry waiting for its delay is not one of them)."""
        if isinstance(self.broker, InMemoryBroker):
            await self.broker.wait_all()
        if self.context.running:
            await asyncio.wait(set(self.context.running))

    def cancel_running(self) -> int:
        """Cancel the jobs running in this process; how many there were. None of them is
        acknowledged: on a stream, another worker runs them again."""
        running = list(self.context.running)
        for task in running:
            task.cancel()
        return len(running)

    async def stop(self, wait_seconds: float = STOP_WAIT_SECONDS) -> None:
        """Let the jobs running in this process finish for up to ``wait_seconds``, cancel any
        still running, and close the broker."""
        try:
            async with asyncio.timeout(wait_seconds):
                await self.settled()
        except TimeoutError:
            logger.warning("jobs cancelled at the stop", extra={"jobs": self.cancel_running()})
        await self.broker.shutdown()
        if self.redis is not None:
            await self.redis.aclose()


def create_jobs(
    settings: JobSettings,
    functions: Mapping[str, JobFunction],
    label_providers: Sequence[LabelProvider] = (),
) -> Jobs:
    """The jobs ``settings`` describe, on a Redis stream or in this process without one, able
    to send and run ``functions`` by name. The API and the worker both build theirs with the
    same functions, so a job the API sends is one the worker knows."""
    retry = RetryPolicy(
        settings.max_attempts, settings.retry_base_seconds, settings.retry_cap_seconds
    )
    if settings.redis_url is None:
        broker: AsyncBroker = InMemoryBroker()
        dead_letters: DeadLetters = MemoryDeadLetters(settings.dead_letters)
        delays: Delays = MemoryDelays(broker)
        redis = None
    else:
        url = settings.redis_url.get_secret_value()
        redis = Redis.from_url(url, **REDIS_TIMEOUTS)
        dead_letters = RedisDeadLetters(redis, f"{settings.stream}:dead", settings.dead_letters)

        async def poisoned(entry_id: str, data: bytes) -> None:
            await dead_letters.add(poison_letter(entry_id, data))

        broker = JobStream(
            url,
            stream=settings.stream,
            redelivery_ms=int(settings.redelivery_seconds * 1000),
            poisoned=poisoned,
            **REDIS_TIMEOUTS,
        )
        delays = RedisDelays(redis, settings.stream)
    context = JobContextMiddleware(dead_letters, delays, retry, label_providers)
    broker.add_middlewares(context)
    jobs = Jobs(broker, dead_letters, delays, context, redis)
    for name, function in functions.items():
        broker.register_task(function, task_name=name)
    return jobs
