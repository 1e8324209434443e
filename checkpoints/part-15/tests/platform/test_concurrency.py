"""bounded_gather: order kept, concurrency bounded, failures cancel the rest.

The fake coroutines synchronise with asyncio.Event and sleep(0), never with wall-clock time, so
the tests are deterministic; the only timeouts are generous ones.
"""

import asyncio

import pytest

from shelfwise.platform.concurrency import bounded_gather


async def test_results_come_back_in_input_order_whatever_the_finishing_order() -> None:
    second_done = asyncio.Event()

    async def first() -> str:
        await second_done.wait()  # finishes only after the second one
        return "first"

    async def second() -> str:
        second_done.set()
        return "second"

    assert await bounded_gather([first, second], limit=2, timeout=10) == ["first", "second"]


async def test_no_more_than_limit_run_at_once() -> None:
    running, most = 0, 0

    async def work(number: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        for _ in range(3):
            await asyncio.sleep(0)  # give every other task the chance to start
        running -= 1
        return number * 10

    factories = [lambda number=number: work(number) for number in range(10)]

    assert await bounded_gather(factories, limit=3, timeout=10) == [n * 10 for n in range(10)]
    assert most == 3


async def test_a_single_failure_is_raised_as_itself_and_cancels_the_rest() -> None:
    cancelled = asyncio.Event()

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails() -> None:
        await asyncio.sleep(0)  # let the other task start first
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        await bounded_gather([waits_forever, fails], limit=2, timeout=10)

    assert cancelled.is_set()


async def test_failures_at_the_same_moment_are_all_reported() -> None:
    async def fails(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ExceptionGroup) as raised:
        await bounded_gather([lambda: fails("a"), lambda: fails("b")], limit=2, timeout=10)

    assert sorted(str(error) for error in raised.value.exceptions) == ["a", "b"]


async def test_a_task_over_its_timeout_raises_timeout_error() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        await bounded_gather([hangs], limit=1, timeout=0.01)


async def test_nothing_to_run_returns_an_empty_list() -> None:
    assert await bounded_gather([], limit=1, timeout=None) == []


async def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await bounded_gather([], limit=0, timeout=None)
