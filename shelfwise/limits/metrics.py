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
            "Requests counted against their tenant's limits, by plan and outcome (allowed, "
            "rate_limited, concurrency_limited), and whether Redis or this process counted them.",
            labels=["plan", "outcome", "limiter"],
        )
        for (plan, outcome, limiter), count in sorted(limits.decisions.items()):
            decisions.add_metric([plan.value, outcome, limiter], count)
        yield decisions
        yield CounterMetricFamily(
            "shelfwise_rate_limit_redis_errors",
            "Rate-limit calls to Redis that failed or timed out; this process counted alone.",
            value=limits.limiter.redis_failures,
        )
        yield CounterMetricFamily(
            "shelfwise_rate_limit_unknown_policies",
            "Requests let through unlimited: their tenant's limits could not be read in time.",
            value=limits.unknown_policies,
        )
