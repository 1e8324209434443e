"""Running many coroutines at once, safely: bounded, with timeouts, failing as one."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def bounded_gather(
    factories: Sequence[Callable[[], Awaitable[T]]], *, limit: int, timeout: float | None
) -> list[T]:
    """Await what each factory returns, at most ``limit`` at a time; return results in order.

    Each awaitable gets ``timeout`` seconds (``None``: no limit) once it starts; time spent
    waiting for a free slot does not count. They run as tasks of one ``asyncio.TaskGroup``, so
    the first failure cancels every other task, and nothing keeps running after this returns.

    Failures: if exactly one task fails (a timeout is a ``TimeoutError``), its exception is
    raised as it is, so callers write a plain ``except``. If several fail before the cancellation
    takes effect, the ``ExceptionGroup`` is raised unchanged: no failure is silently dropped.

    Factories rather than coroutines: a coroutine object that is never awaited (because an
    earlier failure cancelled the batch) would trigger "coroutine was never awaited" warnings.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    slots = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with slots, asyncio.timeout(timeout):
            return await factory()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(factory)) for factory in factories]
    except ExceptionGroup as failures:
        if len(failures.exceptions) == 1:
            # `from None`: the group is an implementation detail; the traceback is kept.
            raise failures.exceptions[0] from None
        raise
    return [task.result() for task in tasks]
