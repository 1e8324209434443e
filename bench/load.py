"""A closed-loop load generator: N workers, each sending its next call as soon as the last
one is answered, first for a warm-up and then for the measured window."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from bench.stats import Sample

# A call returns None when it succeeded, else a short label of what went wrong ("HTTP 500").
Call = Callable[[int], Awaitable[str | None]]


async def drive(
    call: Call,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    cpu_clocks: Mapping[str, Callable[[], float]],
) -> Sample:
    """Run ``call(worker)`` from ``concurrency`` workers for ``warmup + duration`` seconds and
    record the calls that started inside the measured window.

    An exception counts as an error labelled with its type; the worker carries on, so one
    failure does not end the scenario. ``cpu_clocks`` name processes and read their CPU seconds;
    the sample reports how busy each was during the window.
    """
    sample = Sample()
    started = time.perf_counter()
    window_start = started + warmup
    window_end = window_start + duration
    last_finish = window_start

    async def worker(number: int) -> None:
        nonlocal last_finish
        while (begin := time.perf_counter()) < window_end:
            try:
                failure = await call(number)
            except Exception as error:
                failure = type(error).__name__
            end = time.perf_counter()
            if begin < window_start:
                continue
            last_finish = max(last_finish, end)
            if failure is None:
                sample.latencies.append(end - begin)
            else:
                sample.errors[failure] += 1

    cpu_before: dict[str, float] = {}

    async def start_cpu_clocks() -> None:
        await asyncio.sleep(warmup)
        cpu_before.update((name, clock()) for name, clock in cpu_clocks.items())

    await asyncio.gather(start_cpu_clocks(), *(worker(number) for number in range(concurrency)))
    # Calls still running at the end of the window were waited for, and counted.
    sample.seconds = last_finish - window_start
    if sample.seconds > 0:
        sample.cpu_percent = {
            name: 100 * (clock() - cpu_before[name]) / sample.seconds
            for name, clock in cpu_clocks.items()
        }
    return sample
