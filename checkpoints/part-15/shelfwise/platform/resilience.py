"""Degrade, don't fail: a circuit breaker in front of a dependency, and admission control in
front of the whole service.

The breaker is written here rather than taken from a library. pybreaker, the best known Python
breaker, runs coroutines only through Tornado; purgatory, an asyncio one, lets every request
through while half-open and reads the wall clock. We want one trial request at a time, a
monotonic clock a test can drive, and a say in which errors count as the dependency failing.
Admission control is written here too: uvicorn's ``--limit-concurrency`` answers a plain-text
503, without ``Retry-After`` and without a queue.
"""

import asyncio
import enum
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.platform.errors import UnavailableError
from shelfwise.platform.problems import domain_problem_response


class CircuitState(enum.StrEnum):
    CLOSED = "closed"  # calls go through; consecutive failures are counted
    OPEN = "open"  # calls are refused at once, until the reset time has passed
    HALF_OPEN = "half-open"  # one trial call goes through; its outcome closes or reopens


class CircuitOpenError(UnavailableError):
    """A dependency of the service has failed repeatedly, and the service stopped calling it for
    a while rather than make every caller wait for it to fail again. Retry after the number of
    seconds in the `Retry-After` header."""

    code = "circuit_open"
    title = "Dependency unavailable"


class CircuitBreaker:
    """Stops calling a dependency after ``failures`` consecutive failures, for ``reset_seconds``.

    Then one trial call is let through: if it succeeds the circuit closes, if it fails the
    circuit opens again. Only calls admitted while closed, and the trial, have a say: a call
    that started before the circuit opened and ends while it is open changes nothing.
    ``is_failure`` decides which exceptions count: a slow query or a business error says
    nothing about whether the dependency is up.
    """

    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        reset_seconds: float = 5.0,
        is_failure: Callable[[BaseException], bool] = lambda _error: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failures
        self._reset_seconds = reset_seconds
        self._is_failure = is_failure
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._trial_running or self.retry_after() == 0:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def reset_seconds(self) -> float:
        return self._reset_seconds

    def admits(self) -> bool:
        """Whether a call would go through now (``guard`` would not refuse it)."""
        return self._opened_at is None or (not self._trial_running and self.retry_after() == 0)

    def retry_after(self) -> float:
        """Seconds until the next trial call may go through (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._reset_seconds - self._clock())

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block as one call to the dependency, or raise ``CircuitOpenError``."""
        trial = self._admit()
        try:
            yield
        except BaseException as error:
            if self._is_failure(error):
                self._record_failure(trial)
            elif trial:
                self._trial_running = False  # no verdict: the next call is the trial
            raise
        else:
            self._record_success(trial)

    def _admit(self) -> bool:
        if self._opened_at is None:
            return False
        if not self.admits():
            wait = max(1, math.ceil(self.retry_after()))
            raise CircuitOpenError(
                f"{self.name} is failing; calls to it are paused. Retry in {wait} s.",
                retry_after_seconds=wait,
            )
        self._trial_running = True
        return True

    def _record_failure(self, trial: bool) -> None:
        if trial:
            self._trial_running = False
            self._opened_at = self._clock()  # reopen: a failed trial waits a full period
        elif self._opened_at is None:
            self._failures += 1
            if self._failures >= self._threshold:
                self._opened_at = self._clock()

    def _record_success(self, trial: bool) -> None:
        if trial or self._opened_at is None:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False


class OverloadedError(UnavailableError):
    """The service is at capacity: every worker is busy and the queue in front of them is full,
    or the request waited in it too long. Nothing was done. Retry after the number of seconds in
    the `Retry-After` header."""

    code = "overloaded"
    title = "Service overloaded"


class DeadlineExceededError(UnavailableError):
    """The request took longer than the service allows any request to take, and was abandoned.
    Whatever it had not committed was rolled back. Retry after the number of seconds in the
    `Retry-After` header."""

    code = "deadline_exceeded"
    title = "Request took too long"


class AdmissionControl:
    """Pure ASGI middleware that bounds the work in the process: at most ``max_in_flight``
    requests run at once, at most ``max_queued`` wait for a slot, each for at most
    ``queue_timeout`` seconds. The rest are refused at once with 503 and ``Retry-After``.
    An admitted request that runs past ``request_timeout`` seconds is abandoned with 503: each
    wait on the way to the database is bounded, but their sum is not.

    Without it every request is accepted and all of them slow down together: under 1,000
    concurrent connections each waits behind the others for the pool, and most time out
    after doing nothing useful. Shedding early keeps the admitted requests fast, and tells
    the refused ones when to come back. Paths in ``exempt`` (health checks) are never shed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        max_queued: int,
        queue_timeout: float,
        request_timeout: float | None = None,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self._request_timeout = request_timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_queued = max_queued
        self._queue_timeout = queue_timeout
        self._exempt = exempt
        self._queued = 0
        self.shed = 0  # requests refused since start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self._app(scope, receive, send)
            return
        if not await self._wait_for_slot():
            self.shed += 1
            error = OverloadedError(
                "The service is at capacity. Retry in 1 s.", retry_after_seconds=1
            )
            await domain_problem_response(Request(scope), error)(scope, receive, send)
            return
        try:
            await self._run_within_deadline(scope, receive, send)
        finally:
            self._slots.release()

    async def _run_within_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        response_started = False

        async def send_and_track(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self._request_timeout) as deadline:
                await self._app(scope, receive, send_and_track)
        except TimeoutError:
            if not deadline.expired() or response_started:
                raise  # not our deadline; or too late to answer with a problem
            error = DeadlineExceededError(
                f"The request took longer than {self._request_timeout:g} s. Retry in 1 s.",
                retry_after_seconds=1,
            )
            await domain_problem_response(Request(scope), error)(scope, receive, send)

    async def _wait_for_slot(self) -> bool:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: returns at once
            return True
        if self._queued >= self._max_queued:
            return False
        self._queued += 1
        try:
            async with asyncio.timeout(self._queue_timeout):
                await self._slots.acquire()
            return True
        except TimeoutError:
            return False
        finally:
            self._queued -= 1
