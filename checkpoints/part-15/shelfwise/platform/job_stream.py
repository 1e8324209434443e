"""The job stream on Redis: taskiq-redis's ``RedisStreamBroker``, reading with a loop of our own.

taskiq-redis 1.2.4 sends, acknowledges and reads a stream through a consumer group. Part 14's
hostile probe found its reading loop wanting on five counts, each of which lost jobs or burned
a core:

- its consumer group starts at the stream's end (``$``): jobs sent before the first worker
  started, or after Redis lost its data, were never read;
- when Redis lost the group, every read failed (``NOGROUP``) in a loop without a pause;
- it reclaimed a dead worker's messages only after a new message arrived;
- a reclaimed message the stream no longer held, or one without a body, failed the whole
  batch reclaimed with it, on every pass;
- a message that failed before its acknowledgement (a label taskiq rejects) came back forever.

``JobStream`` keeps the library's sending and acknowledging and reads with ``listen`` below.
Nothing is trimmed when sending either: ``trim_handled`` drops only what the consumer group has
acknowledged, so a backlog waits for its workers instead of being cut.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage, BrokerMessage
from taskiq_redis import RedisStreamBroker

logger = logging.getLogger(__name__)

# Labels taskiq itself obeys. A message is stripped of them before it runs: ShelfWise sets
# none, and a message that carries a bad one would fail before its acknowledgement, forever.
TASKIQ_CONTROL_LABELS = frozenset(
    {"ack_type", "timeout", "retry_on_error", "queue_name", "delay", "max_retries", "_retries"}
)
MAX_LABELS = 20
LABEL_LENGTH = 200
# A message handed out this many times without an acknowledgement is a poison message: the
# workers that took it died on it, or failed before the job could report anything.
MAX_DELIVERIES = 3
RETRY_SECONDS = 1.0
# At most this many unfinished messages are handed back when a worker stops.
HAND_BACK_LIMIT = 1000

# Where a poison message goes (its entry id, its body): the dead letters.
PoisonSink = Callable[[str, bytes], Awaitable[None]]


class JobStream(RedisStreamBroker):
    """The jobs' Redis stream, read through the consumer group ``taskiq``."""

    def __init__(
        self,
        url: str,
        *,
        stream: str,
        redelivery_ms: int,
        poisoned: PoisonSink,
        **connection: Any,
    ) -> None:
        super().__init__(
            url,
            queue_name=stream,
            consumer_id="0",  # a new group reads the stream from its first entry
            idle_timeout=redelivery_ms,
            maxlen=None,  # never trim on sending: trim_handled drops what was acknowledged
            **connection,
        )
        self._poisoned = poisoned
        self._listening = True
        self._claim_from = "0-0"  # XAUTOCLAIM's cursor: each pass goes on where the last ended

    async def kick(self, message: BrokerMessage) -> None:
        # Always this stream: a label never chooses where a message goes.
        async with Redis(connection_pool=self.connection_pool) as redis:
            await redis.xadd(self.queue_name, {b"data": message.message})

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        failing = False
        async with Redis(connection_pool=self.connection_pool) as redis:
            # Checked on every pass: a read that began after stop_listening closed the
            # connections opens a new one, and must not be followed by another.
            while self._listening:
                try:
                    entries = await self._read(redis)
                except RedisError as error:
                    if not self._listening:
                        return  # stop_listening closed the connection under the read
                    if isinstance(error, ResponseError) and "NOGROUP" in str(error):
                        logger.warning("the job stream's consumer group is gone: creating it")
                        with contextlib.suppress(RedisError):
                            await self._declare_consumer_group()
                            continue
                    elif not failing:
                        logger.exception("the job stream's Redis fails")
                    failing = True
                    await asyncio.sleep(RETRY_SECONDS)  # whatever it is, never a hot loop
                    continue
                failing = False
                for entry_id, fields in entries:
                    message = await self._deliverable(redis, entry_id, fields)
                    if message is not None:
                        yield message

    async def stop_listening(self) -> None:
        """End ``listen``: its pending read fails, and it returns instead of reading again."""
        self._listening = False
        await self.connection_pool.disconnect()

    async def leave(self) -> None:
        """Hand back the messages this worker took and did not finish, then leave the group.

        A read takes up to ``count`` messages at once; those not run yet would otherwise wait
        the whole redelivery time for another worker. Each goes back on the stream as a new
        message and is acknowledged here, in one transaction.
        """
        async with Redis(connection_pool=self.connection_pool) as redis:
            held = await redis.xpending_range(
                self.queue_name,
                self.consumer_group_name,
                min="-",
                max="+",
                count=HAND_BACK_LIMIT,
                consumername=self.consumer_name,
            )
            for entry in held:
                entry_id = entry["message_id"]
                found: Any = await redis.xrange(self.queue_name, min=entry_id, max=entry_id)
                async with redis.pipeline(transaction=True) as both:
                    if found and b"data" in found[0][1]:
                        both.xadd(self.queue_name, {b"data": found[0][1][b"data"]})
                    both.xack(self.queue_name, self.consumer_group_name, entry_id)
                    await both.execute()
            await redis.xgroup_delconsumer(
                self.queue_name, self.consumer_group_name, self.consumer_name
            )

    async def _read(self, redis: Redis) -> list[tuple[bytes, Mapping[bytes, bytes] | None]]:
        """New messages (waiting up to the block time for one), then abandoned ones."""
        fetched: Any = await redis.xreadgroup(
            self.consumer_group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            block=self.block,
            count=self.count,
        )
        # RESP3 (redis-py's default from 8) answers a map of streams; RESP2, a list of pairs.
        batches = fetched.values() if isinstance(fetched, dict) else [b for _, b in fetched or []]
        entries: list[tuple[bytes, Mapping[bytes, bytes] | None]] = [
            (entry_id, fields) for batch in batches for entry_id, fields in batch
        ]
        reply: Any = await redis.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            start_id=self._claim_from,
            count=self.unacknowledged_batch_size,
        )
        cursor, claimed = reply[0], reply[1]
        self._claim_from = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if any(entry_id is None for entry_id, _ in claimed):
            # Redis 6.2 answers None for a claimed message the stream no longer holds.
            await self._drop_vanished(redis)
        for entry_id, fields in claimed:
            if entry_id is not None and not await self._poison(redis, entry_id, fields):
                entries.append((entry_id, fields))
        return entries

    async def _deliverable(
        self, redis: Redis, entry_id: bytes, fields: Mapping[bytes, bytes] | None
    ) -> AckableMessage | None:
        data = (fields or {}).get(b"data")
        if data is None:
            await redis.xack(self.queue_name, self.consumer_group_name, entry_id)
            logger.error("a job message without a body was dropped", extra={"entry": entry_id})
            return None
        return AckableMessage(
            data=_without_control_labels(data),
            ack=self._ack_generator(id=entry_id.decode(), queue_name=self.queue_name),
        )

    async def _poison(
        self, redis: Redis, entry_id: bytes, fields: Mapping[bytes, bytes] | None
    ) -> bool:
        """Whether the reclaimed ``entry_id`` is a poison message; if so, it is acknowledged
        and handed to the poison sink (the dead letters)."""
        [pending] = await redis.xpending_range(
            self.queue_name, self.consumer_group_name, min=entry_id, max=entry_id, count=1
        ) or [{"times_delivered": 0}]
        if int(pending["times_delivered"]) < MAX_DELIVERIES:
            return False
        await self._poisoned(entry_id.decode(), (fields or {}).get(b"data", b""))
        await redis.xack(self.queue_name, self.consumer_group_name, entry_id)
        return True

    async def _drop_vanished(self, redis: Redis) -> None:
        # The claim made them this consumer's (and reset how long they were idle).
        pending = await redis.xpending_range(
            self.queue_name,
            self.consumer_group_name,
            min="-",
            max="+",
            count=self.unacknowledged_batch_size,
            consumername=self.consumer_name,
        )
        for entry in pending:
            entry_id = entry["message_id"]
            if not await redis.xrange(self.queue_name, min=entry_id, max=entry_id):
                await redis.xack(self.queue_name, self.consumer_group_name, entry_id)
                logger.error("a pending job the stream no longer holds was dropped")

    async def keep_trimming(self, interval: float) -> None:
        """``trim_handled`` every ``interval`` seconds, until cancelled."""
        await every(interval, self.trim_handled, "the job stream could not be trimmed")

    async def trim_handled(self) -> int:
        """Drop the entries every consumer group has acknowledged; how many went."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            groups = await redis.xinfo_groups(self.queue_name)
            if not groups:
                return 0
            keep_from = []
            for group in groups:
                keep_from.append(_entry_id(group["last-delivered-id"]))
                summary = await redis.xpending(self.queue_name, group["name"])
                if summary["pending"]:
                    keep_from.append(_entry_id(summary["min"]))
            oldest = min(keep_from)
            if oldest == (0, 0):
                return 0
            cut = f"{oldest[0]}-{oldest[1]}"
            return int(await redis.xtrim(self.queue_name, minid=cut, approximate=False))


async def every(interval: float, step: Callable[[], Awaitable[object]], failure: str) -> None:
    """Run ``step`` every ``interval`` seconds until cancelled. A failure is logged as
    ``failure`` once per outage, not once per try, and tried again."""
    failing = False
    while True:
        try:
            await step()
            failing = False
        except Exception:
            if not failing:
                logger.exception(failure)
            failing = True
        await asyncio.sleep(interval)


def _entry_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


def _without_control_labels(data: bytes) -> bytes:
    """``data`` with taskiq's control labels removed and the others bounded; as it was if it
    is not a message at all (taskiq then logs it and acknowledges it)."""
    try:
        message = json.loads(data)
        labels = message["labels"]
    except (ValueError, TypeError, KeyError):
        return data
    if not isinstance(labels, dict):
        return data
    kept = [
        (name, str(value)[:LABEL_LENGTH])
        for name, value in labels.items()
        if name not in TASKIQ_CONTROL_LABELS
    ]
    message["labels"] = dict(kept[:MAX_LABELS])
    return json.dumps(message).encode()
