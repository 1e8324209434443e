"""Metrics in the Prometheus text format at ``GET /metrics``, with a bounded set of series.

Each label multiplies the series a metric has, and every series costs memory in the process
and in Prometheus for as long as it exists. So labels take values from fixed sets only: the
route's template (``/books/{book_id}``, never ``/books/7``), the method, the status class, a
problem code. No label carries a tenant, a user or a request: those belong in the logs and
traces, where a high cardinality costs nothing.

Each app has a registry of its own (not prometheus_client's global one), so two apps in one
process, as in the tests, never count into each other's series.
"""

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.platform.cache import TwoLevelCache
from shelfwise.platform.db import Database
from shelfwise.platform.problems import problem_code_of
from shelfwise.platform.resilience import CircuitBreaker, CircuitState

# A request no route answered: an unknown path, or one refused before routing (shed). One
# series for all of them, not one per URL.
NO_ROUTE = "<no route>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = structlog.stdlib.get_logger("shelfwise.access")
MAX_LOGGED_PATH = 200  # characters of a request's path on its access line


class HttpMetrics:
    """The request metrics of one app, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.duration = Histogram(
            "shelfwise_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status class.",
            ["method", "route", "status_class"],
            registry=registry,
        )
        self.problems = Counter(
            "shelfwise_problems",
            "Problem responses, by route template and problem code.",
            ["route", "code"],
            registry=registry,
        )

    def observe(
        self, method: str, route: str, status: int, seconds: float, problem: str | None
    ) -> None:
        """Count one answered request, and its problem if it was answered with one."""
        method = method if method in KNOWN_METHODS else "other"
        self.duration.labels(method, route, f"{status // 100}xx").observe(seconds)
        if problem is not None:
            self.problems.labels(route, problem).inc()


def route_template(scope: Scope) -> str:
    """The template of the route that matched (the router records it in the scope)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else NO_ROUTE


class RequestTelemetry:
    """Pure ASGI middleware that times every HTTP request, counts it and its problem, and
    writes its access line (with the request's ids, bound by then). It sits outside admission
    control, so the requests it sheds are counted and logged too."""

    def __init__(
        self, app: ASGIApp, metrics: HttpMetrics, unlogged: frozenset[str] = frozenset()
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._unlogged = unlogged  # probes and scrapes: counted, but a line each is noise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_record_status)
        finally:
            seconds = time.perf_counter() - started
            # Read after the app has answered: routing and the problem have been recorded.
            route, problem = route_template(scope), problem_code_of(scope)
            self._metrics.observe(scope["method"], route, status, seconds, problem)
            if scope["path"] not in self._unlogged:
                self._log(scope, route, status, seconds, problem)

    @staticmethod
    def _log(scope: Scope, route: str, status: int, seconds: float, problem: str | None) -> None:
        fields = {
            "method": scope["method"],
            # The path is the client's: bounded (a URL may be 64 KB, and JSON escapes grow it).
            "path": scope["path"][:MAX_LOGGED_PATH],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        }
        if problem is not None:
            fields["problem"] = problem
        access_log.log(logging.WARNING if status >= 500 else logging.INFO, "request", **fields)


class DatabaseCollector(Collector):
    """The state of an app's database at scrape time: each circuit breaker's state (the
    cache's Redis has one too), and the connections each pool has lent out and keeps idle."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterable[Metric]:
        database: Database | None = getattr(self._app.state, "database", None)
        if database is None:  # before startup or after shutdown
            return
        circuit = GaugeMetricFamily(
            "shelfwise_circuit_state",
            "1 for the state each circuit breaker is in, 0 for the others.",
            labels=["server", "state"],
        )
        pool = GaugeMetricFamily(
            "shelfwise_db_pool_connections",
            "Connections in each server's pool, lent out or idle.",
            labels=["server", "state"],
        )
        breakers = [(server, breaker) for server, breaker, _ in _servers(database)]
        cache: TwoLevelCache | None = getattr(self._app.state, "cache", None)
        if cache is not None and cache.redis is not None:
            breakers.append(("redis", cache.breaker))
        for server, breaker in breakers:
            for circuit_state in CircuitState:
                is_current = float(breaker.state is circuit_state)
                circuit.add_metric([server, circuit_state.value], is_current)
        for server, _, engine in _servers(database):
            for use, count in _pool_counts(engine.pool):
                pool.add_metric([server, use], count)
        yield circuit
        yield pool


class CacheCollector(Collector):
    """What an app's cache did: lookups by outcome, and Redis calls that failed."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterable[Metric]:
        cache: TwoLevelCache | None = getattr(self._app.state, "cache", None)
        if cache is None:
            return
        counts = cache.counts
        lookups = CounterMetricFamily(
            "shelfwise_cache_lookups",
            "Cache lookups: answered from this process (l1_hit) or Redis (l2_hit), loaded from "
            "the database (load), or answered by another request's load (coalesced).",
            labels=["outcome"],
        )
        for outcome, count in (
            ("l1_hit", counts.l1_hits),
            ("l2_hit", counts.l2_hits),
            ("load", counts.loads),
            ("coalesced", counts.coalesced),
        ):
            lookups.add_metric([outcome], count)
        yield lookups
        yield CounterMetricFamily(
            "shelfwise_cache_redis_errors",
            "Redis calls that failed or timed out; the cache was bypassed for them.",
            value=counts.redis_errors,
        )


def _servers(database: Database) -> Iterator[tuple[str, CircuitBreaker, AsyncEngine]]:
    yield "primary", database.breaker, database.engine
    if database.replica is not None:
        yield "replica", database.replica_breaker, database.replica


def _pool_counts(pool: Any) -> Iterator[tuple[str, float]]:
    # SQLite's in-memory database uses a StaticPool: one connection, no counts to report.
    if hasattr(pool, "checkedout"):
        yield "checked_out", float(pool.checkedout())
        yield "idle", float(pool.checkedin())


def install_metrics(app: FastAPI) -> HttpMetrics:
    """Give ``app`` a registry with its request, database and process metrics, and the
    ``GET /metrics`` route that exposes them. Returns the request metrics for the middleware."""
    # Every counter and histogram would otherwise get a second series holding its creation
    # time, which Prometheus does not need. A process-wide switch: every app wants it off.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry)
    registry.register(DatabaseCollector(app))
    registry.register(CacheCollector(app))
    ProcessCollector(registry=registry)  # memory, CPU time, open files (on Linux)
    app.state.metrics = metrics
    app.add_api_route("/metrics", expose_metrics, methods=["GET"], include_in_schema=False)
    return metrics


async def expose_metrics(request: Request) -> Response:
    """Every metric of the app, for Prometheus to scrape. Serve it to the monitoring network
    only: it says how busy the service is and how its database fares."""
    metrics: HttpMetrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
