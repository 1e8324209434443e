"""The limits' metrics: what was decided, by plan (never by tenant), and Redis's failures."""

from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from shelfwise.limits.plans import TenantLimits


class LimitsCollector(Collector):
    """Reads the app's ``TenantLimits`` at each scrape."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterable[Metric]:
        limits: TenantLimits | None = getattr(self._app.state, "tenant_limits", None)
        if limits is None:
            return
        decisions = CounterMetricFamily(
            "shelfwise_rate_limit_decisions",
            "Requests counted against their tenant's limits, by plan, outcome (allowed, "
            "rate_limited, concurrency_limited) and who counted them: Redis, this process "
            "(local), or a refusal it remembered (memory).",
            labels=["plan", "outcome", "counted_by"],
        )
        for (plan, outcome, counted_by), count in sorted(limits.decisions.items()):
            decisions.add_metric([plan.value, outcome, counted_by], count)
        yield decisions
        yield CounterMetricFamily(
            "shelfwise_rate_limit_redis_errors",
            "Rate-limit calls to Redis that failed or timed out; this process counted alone.",
            value=limits.limiter.redis_failures,
        )
        yield CounterMetricFamily(
            "shelfwise_rate_limit_unknown_policies",
            "Requests whose tenant's limits could not be read in time: their quota was not "
            "counted (their cap was the free plan's).",
            value=limits.unknown_policies,
        )
        yield CounterMetricFamily(
            "shelfwise_rate_limit_errors",
            "Requests let through unlimited because deciding failed unexpectedly (see the log).",
            value=limits.errors,
        )
