"""The circuit breaker's three states, and admission control's bounded queue, on a clock and an
app the tests drive."""

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from shelfwise.platform.resilience import (
    AdmissionControl,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
)
from tests.clocks import Clock


class Outage(Exception):
    pass


class BrokenRule(Exception):
    pass


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(
        "the test database",
        failures=3,
        reset_seconds=10,
        is_failure=lambda error: isinstance(error, Outage),
        clock=clock,
    )


def call(breaker: CircuitBreaker, error: Exception | None = None) -> None:
    with breaker.guard():
        if error is not None:
            raise error


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Outage):
            call(breaker, Outage())


def test_the_circuit_opens_after_consecutive_failures_and_refuses_calls(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, 2)
    assert state(breaker) is CircuitState.CLOSED
    fail(breaker)
    assert state(breaker) is CircuitState.OPEN

    clock.now = 4.2
    with pytest.raises(CircuitOpenError) as refused:
        call(breaker)
    assert refused.value.retry_after_seconds == 6  # 5.8 s left, rounded up


def test_a_success_resets_the_count_of_failures(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    call(breaker)
    fail(breaker, 2)
    assert state(breaker) is CircuitState.CLOSED


def test_errors_that_are_not_outages_do_not_count(breaker: CircuitBreaker) -> None:
    for _ in range(5):
        with pytest.raises(BrokenRule):
            call(breaker, BrokenRule())
    assert state(breaker) is CircuitState.CLOSED


def test_after_the_reset_time_one_trial_call_goes_through_and_its_success_closes(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, 3)
    clock.now = 10
    assert state(breaker) is CircuitState.HALF_OPEN

    with breaker.guard(), pytest.raises(CircuitOpenError):  # the trial runs
        call(breaker)  # and a second caller meanwhile is refused
    assert state(breaker) is CircuitState.CLOSED
    call(breaker)


def test_a_failed_trial_reopens_the_circuit_for_a_full_period(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, 3)
    clock.now = 10
    fail(breaker)  # the trial fails

    assert state(breaker) is CircuitState.OPEN
    assert breaker.retry_after() == 10


def test_a_trial_that_ends_without_a_verdict_lets_the_next_call_try(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, 3)
    clock.now = 10
    with pytest.raises(BrokenRule):
        call(breaker, BrokenRule())

    assert state(breaker) is CircuitState.HALF_OPEN
    call(breaker)
    assert state(breaker) is CircuitState.CLOSED


def test_a_call_that_outlived_the_opening_of_the_circuit_has_no_say(
    breaker: CircuitBreaker,
) -> None:
    with breaker.guard():  # admitted while closed; slow
        fail(breaker, 3)  # meanwhile, the circuit opens
    assert state(breaker) is CircuitState.OPEN  # the late success did not close it
    assert breaker.retry_after() == 10


def test_a_late_failure_does_not_let_a_second_trial_in(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    slow = breaker.guard()
    slow.__enter__()  # admitted while closed
    fail(breaker, 3)
    clock.now = 10
    with breaker.guard():  # the trial runs...
        slow.__exit__(Outage, Outage(), None)  # ...while the slow call fails
        with pytest.raises(CircuitOpenError):
            call(breaker)  # still one trial at a time
    assert state(breaker) is CircuitState.CLOSED  # the trial's success decided


# --- Admission control -------------------------------------------------------------------------


class SlowApp:
    """An ASGI app whose requests all wait until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.running += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


def client(app: AdmissionControl) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_requests_beyond_the_slots_and_the_queue_are_refused_at_once() -> None:
    slow = SlowApp()
    admission = AdmissionControl(
        slow, max_in_flight=2, max_queued=1, queue_timeout=30, exempt=frozenset({"/health"})
    )
    async with client(admission) as api:
        admitted = [asyncio.create_task(api.get("/books")) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert slow.running == 2  # the third waits in the queue

        refused = await asyncio.gather(api.get("/books"), api.get("/books"))
        for response in refused:
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert response.json()["code"] == "overloaded"
        health = asyncio.create_task(api.get("/health"))  # exempt: runs beside the others
        await asyncio.sleep(0.05)
        assert slow.running == 3

        slow.release.set()
        assert [r.status_code for r in await asyncio.gather(*admitted, health)] == [200] * 4
    assert admission.shed == 2


async def test_a_queued_request_is_refused_when_no_slot_frees_in_time() -> None:
    slow = SlowApp()
    admission = AdmissionControl(slow, max_in_flight=1, max_queued=5, queue_timeout=0.1)
    async with client(admission) as api:
        first = asyncio.create_task(api.get("/books"))
        await asyncio.sleep(0.05)

        assert (await api.get("/books")).status_code == 503
        slow.release.set()
        assert (await first).status_code == 200
        assert (await api.get("/books")).status_code == 200  # the slot came back


async def test_a_request_past_the_deadline_is_answered_503_and_frees_its_slot() -> None:
    slow = SlowApp()
    admission = AdmissionControl(slow, max_in_flight=1, max_queued=0, queue_timeout=1,
                                 request_timeout=0.1)  # fmt: skip
    async with client(admission) as api:
        abandoned = await api.get("/books")
        assert abandoned.status_code == 503
        assert abandoned.json()["code"] == "deadline_exceeded"
        assert abandoned.headers["Retry-After"] == "1"

        slow.release.set()
        assert (await api.get("/books")).status_code == 200
