"""The worker process: it runs jobs from a Redis stream, fails closed on a job without a tenant,
and stops promptly and cleanly on SIGTERM after it has handled one."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis.asyncio as redis
from pydantic import SecretStr

from shelfwise.orders.jobs import RECORD_SALE
from shelfwise.platform.jobs import DeadLetter, create_jobs
from shelfwise.platform.settings import JobSettings
from shelfwise.worker import work

ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = 10


def test_a_worker_fails_a_job_without_a_tenant_closed_then_stops_on_sigterm(
    redis_url: str, tmp_path: Path
) -> None:
    stream = f"test:jobs:{uuid.uuid4().hex}"
    environment = os.environ | {
        "SHELFWISE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
        "SHELFWISE_JOBS_REDIS_URL": redis_url,
        "SHELFWISE_JOBS_STREAM": stream,
        "SHELFWISE_LOG_LEVEL": "INFO",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "shelfwise.worker"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert worker.stdout is not None
        deadline = time.monotonic() + STOP_SECONDS
        for line in worker.stdout:
            if "worker started" in line or time.monotonic() > deadline:
                break
        time.sleep(1)  # idle first: the receiver waits on the stream
        settings = JobSettings(redis_url=SecretStr(redis_url), stream=stream)
        # Sent with no tenant: the worker must run none of the job's code.
        letters = asyncio.run(dead_letters_after_sending(settings, RECORD_SALE, order_id=1))
        assert [letter.error.split(":")[0] for letter in letters] == ["MissingTenantError"]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=STOP_SECONDS) == 0
    finally:
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()


async def dead_letters_after_sending(
    settings: JobSettings, name: str, **arguments: int
) -> list[DeadLetter]:
    """Send job ``name`` to the stream, and wait for it to become a dead letter."""

    async def never_run_here(**_: int) -> None:
        raise AssertionError("the worker runs the job, not the sender")

    jobs = create_jobs(settings, {name: never_run_here})
    try:
        await jobs.send(name, **arguments)
        async with asyncio.timeout(STOP_SECONDS):
            while not (letters := await jobs.dead_letters.recent(10)):
                await asyncio.sleep(0.05)
        return letters
    finally:
        await jobs.stop()


def test_the_worker_refuses_to_start_without_a_stream() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_JOBS_")}
    done = subprocess.run(
        [sys.executable, "-m", "shelfwise.worker"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=STOP_SECONDS,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "python -m shelfwise.worker: set SHELFWISE_JOBS_REDIS_URL; without it the API runs its "
        "jobs itself"
    ]


async def test_a_stopping_worker_lets_its_running_job_finish_and_acknowledges_it(
    redis_url: str,
) -> None:
    settings = JobSettings(redis_url=SecretStr(redis_url), stream=f"test:jobs:{uuid.uuid4().hex}")
    started, finished = asyncio.Event(), []

    async def slow(number: int) -> None:
        started.set()
        await asyncio.sleep(1)
        finished.append(number)

    jobs = create_jobs(settings, {"tests.slow": slow})
    await jobs.start()
    stop = asyncio.Event()
    worker = asyncio.create_task(work(jobs, stop))
    try:
        await jobs.send("tests.slow", number=7)
        async with asyncio.timeout(STOP_SECONDS):
            await started.wait()
        stop.set()  # mid-job
        async with asyncio.timeout(STOP_SECONDS):
            await worker
        assert finished == [7]
        client = redis.Redis.from_url(redis_url)
        [group] = await client.xinfo_groups(settings.stream)
        assert group["pending"] == 0  # acknowledged: no other worker will run it again
        assert group["consumers"] == 0  # and the stopped worker left the group
        await client.aclose()
    finally:
        worker.cancel()
        await jobs.stop()
