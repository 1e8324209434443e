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
    BrokerMessage,
    InMemoryBroker,
    TaskiqMessage,
    TaskiqMiddleware,
    TaskiqResult,
)
from taskiq_redis import RedisStreamBroker

from shelfwise.platform.settings import JobSettings

logger = logging.getLogger(__name__)

ATTEMPT = "attempt"
REQUEST_ID = "request_id"
# The labels a job's message carries, and nothing else (a label is a string, bounded).
LABEL_LENGTH = 200

LabelProvider = Callable[[], Mapping[str, str]]
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
        return [_letter(entry_id, fields) for entry_id, fields in entries or []]

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


def _letter(entry_id: bytes | str | None, fields: Mapping[Any, Any] | None) -> DeadLetter:
    raw = (fields or {}).get(b"letter", (fields or {}).get("letter"))
    document = json.loads(raw)
    document["id"] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return DeadLetter(**document)


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
        attempt = _attempt(message)
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
        await self.broker_again(message, attempt + 1, delay)

    async def broker_again(self, message: TaskiqMessage, attempt: int, delay: float) -> None:
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


def _attempt(message: TaskiqMessage) -> int:
    try:
        return max(1, int(message.labels.get(ATTEMPT, 1)))
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
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', message)
end
return #due
"""


class RedisDelays:
    """A Redis sorted set of messages, scored by when each is due. ``promote`` moves the due
    ones onto the job stream; the worker runs it every ``interval`` seconds."""

    def __init__(self, redis: Redis, stream: str, *, stream_length: int, batch: int = 100) -> None:
        self._redis = redis
        self._stream = stream
        self._key = f"{stream}:delayed"
        self._stream_length = stream_length
        self._batch = batch
        self._promote = redis.register_script(PROMOTE)

    async def later(self, message: BrokerMessage, delay: float) -> None:
        await self._redis.zadd(self._key, {message.message: time.time() + delay})

    async def promote(self) -> int:
        """Move the messages that are due onto the stream; how many there were."""
        moved = await self._promote(
            keys=[self._key, self._stream],
            args=[time.time(), self._batch, self._stream_length],
        )
        return int(moved)

    async def keep_promoting(self, interval: float) -> None:
        """``promote`` every ``interval`` seconds, until cancelled; a Redis error is logged once
        per outage and tried again."""
        failing = False
        while True:
            try:
                await self.promote()
                failing = False
            except Exception:
                if not failing:
                    logger.exception("delayed jobs could not be promoted")
                failing = True
            await asyncio.sleep(interval)


JobFunction = Callable[..., Awaitable[None]]


class UnknownJobError(LookupError):
    """No job of this name is registered."""


@dataclass
class Jobs:
    """A process's broker, and where its retries wait and its dead letters go."""

    broker: AsyncBroker
    dead_letters: DeadLetters
    delays: Delays
    context: JobContextMiddleware
    redis: Redis | None = None  # the stream's, for the worker's promoter; None in process

    async def send(self, name: str, **arguments: int | str) -> None:
        """Send the job ``name`` with ``arguments`` (JSON scalars), labelled with the sender's
        context. In process it runs as a task of its own; on a stream, in a worker."""
        task = self.broker.find_task(name)
        if task is None:
            raise UnknownJobError(name)
        await task.kiq(**arguments)

    async def replay(self, letter_id: str) -> DeadLetter | None:
        """Send dead letter ``letter_id`` again as a first attempt, and take it off the dead
        letters; ``None`` if there is no such letter (or another operator took it)."""
        letter = await self.dead_letters.take(letter_id)
        if letter is None:
            return None
        labels = letter.labels | {ATTEMPT: "1"}
        message = json.loads(letter.message)
        message["labels"] = labels
        await self.broker.kick(
            BrokerMessage(
                task_id=letter.task_id,
                task_name=letter.task_name,
                message=json.dumps(message).encode(),
                labels=labels,
            )
        )
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

    async def stop(self) -> None:
        """Let the jobs running in this process finish, then close the broker."""
        await self.settled()
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
        broker = RedisStreamBroker(
            url,
            queue_name=settings.stream,
            maxlen=settings.stream_length,
            idle_timeout=int(settings.redelivery_seconds * 1000),
            # A worker killed while it reclaims must not block reclaiming for good
            # (taskiq-redis issue #131).
            unacknowledged_lock_timeout=settings.redelivery_seconds,
            **REDIS_TIMEOUTS,
        )
        dead_letters = RedisDeadLetters(redis, f"{settings.stream}:dead", settings.dead_letters)
        delays = RedisDelays(redis, settings.stream, stream_length=settings.stream_length)
    context = JobContextMiddleware(dead_letters, delays, retry, label_providers)
    broker.add_middlewares(context)
    jobs = Jobs(broker, dead_letters, delays, context, redis)
    for name, function in functions.items():
        broker.register_task(function, task_name=name)
    return jobs
