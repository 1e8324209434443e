"""``python -m shelfwise.worker``: runs the jobs the API sends, until SIGTERM or SIGINT.

On a Redis stream (``SHELFWISE_JOBS_REDIS_URL``) any number of workers share the work. Each
also moves retries that are due back onto the stream. On a stop it takes no new job, lets the
jobs it is running finish (up to ``DRAIN_SECONDS``), and exits 0.
"""

import asyncio
import contextlib
import logging
import signal
import sys

from redis.exceptions import RedisError
from taskiq.api import run_receiver_task

from shelfwise.main import opened_database, opened_jobs
from shelfwise.platform.job_stream import JobStream
from shelfwise.platform.jobs import Jobs, RedisDelays
from shelfwise.platform.logs import configure_logging
from shelfwise.platform.settings import Settings, SettingsError, load_settings
from shelfwise.platform.tracing import accept_trace_context_only, create_tracer_provider

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0
PROMOTE_EVERY_SECONDS = 0.5
# Acknowledged messages are dropped from the stream this often.
TRIM_EVERY_SECONDS = 30.0
CANCEL_AGAIN_SECONDS = 1.0


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Take jobs from ``settings``' broker until ``stop`` is set, then drain and return."""
    tracer_provider = create_tracer_provider()
    try:
        async with (
            opened_database(settings, tracer_provider) as database,
            opened_jobs(settings, database, tracer_provider) as jobs,
        ):
            await work(jobs, stop)
    finally:
        tracer_provider.shutdown()


async def work(jobs: Jobs, stop: asyncio.Event) -> None:
    """Run ``jobs``' jobs from their stream until ``stop`` is set; then take no new job, let
    the running ones finish (up to ``DRAIN_SECONDS``) and return."""
    receiving = asyncio.create_task(run_receiver_task(jobs.broker))
    upkeep = asyncio.create_task(_upkeep(jobs))
    logger.info("worker started")
    await stop.wait()
    logger.info("worker stopping")
    await _stopped(jobs, receiving, upkeep)
    logger.info("worker stopped")


async def _upkeep(jobs: Jobs) -> None:
    """On a stream: move retries that are due back onto it, and drop what was handled."""
    if isinstance(jobs.delays, RedisDelays) and isinstance(jobs.broker, JobStream):
        await asyncio.gather(
            jobs.delays.keep_promoting(PROMOTE_EVERY_SECONDS),
            jobs.broker.keep_trimming(TRIM_EVERY_SECONDS),
        )


async def _stopped(
    jobs: Jobs, receiving: "asyncio.Task[None]", upkeep: "asyncio.Task[None]"
) -> None:
    upkeep.cancel()
    receiving.cancel()  # takes no new job; the running ones go on
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            await jobs.settled()
    except TimeoutError:
        logger.warning(
            "jobs cancelled at the stop: they run again on another worker",
            extra={"jobs": jobs.cancel_running()},
        )
    # taskiq 0.13's receiver, once it has handled a job, can sit out a cancellation in its
    # clean-up, waiting on a read of the stream. Closing the stream's connections fails that
    # read, and cancelling again then ends the receiver.
    if isinstance(jobs.broker, JobStream):
        await jobs.broker.stop_listening()
    for task in (upkeep, receiving):
        await _cancelled(task)
    if isinstance(jobs.broker, JobStream):
        with contextlib.suppress(RedisError):
            await jobs.broker.leave()  # a stopped worker is not left listed in the group


async def _cancelled(task: "asyncio.Task[None]") -> None:
    """Cancel ``task`` until it has ended, once a second."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_AGAIN_SECONDS)


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"python -m shelfwise.worker: {error}", file=sys.stderr)
        return 1
    configure_logging(settings.log)
    accept_trace_context_only()
    if settings.jobs.redis_url is None:
        print(
            "python -m shelfwise.worker: set SHELFWISE_JOBS_REDIS_URL; without it the API runs "
            "its jobs itself",
            file=sys.stderr,
        )
        return 1

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
