"""The arithmetic of a run: percentiles, throughput, ratios and the printed table. No I/O."""

import math
from collections import Counter
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``percent`` % of the values
    at or below it. ``sorted_values`` must be sorted and non-empty."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    rank = math.ceil(percent / 100 * len(sorted_values))
    return sorted_values[rank - 1]


@dataclass
class Sample:
    """What one scenario's measured window recorded."""

    latencies: list[float] = field(default_factory=list)  # seconds, successful calls only
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 500", "DeadlockDetectedError"
    seconds: float = 0.0  # length of the measured window
    # How busy each process was during the window: the one doing the work first ("server"),
    # then the one sending the load, if that is another ("load generator").
    cpu_percent: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """One scenario's figures. ``anchor`` names the scenario it is compared with, if any."""

    name: str
    rate: float  # successful calls per second
    p50_ms: float | None  # None when no call succeeded
    p99_ms: float | None
    requests: int
    errors: dict[str, int]
    cpu_percent: dict[str, float]
    anchor: str | None = None
    through_server: bool = True  # False for the anchors that call the database directly

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def summarize(
    name: str, sample: Sample, *, anchor: str | None = None, through_server: bool = True
) -> Result:
    """Reduce ``sample`` to throughput and latency percentiles."""
    latencies = sorted(sample.latencies)
    has_any = bool(latencies) and sample.seconds > 0
    return Result(
        name=name,
        rate=len(latencies) / sample.seconds if has_any else 0.0,
        p50_ms=percentile(latencies, 50) * 1000 if has_any else None,
        p99_ms=percentile(latencies, 99) * 1000 if has_any else None,
        requests=len(latencies),
        errors=dict(sorted(sample.errors.items())),
        cpu_percent=sample.cpu_percent,
        anchor=anchor,
        through_server=through_server,
    )


def ratio(result: Result, anchor: Result) -> float | None:
    """``result``'s throughput as a fraction of ``anchor``'s (None if the anchor did nothing)."""
    return result.rate / anchor.rate if anchor.rate > 0 else None


CEILING = "GET /health"
# A route that does nothing, but like every route other than the probes is traced, metered and
# logged (from part 12 on /health skips all three): the ceiling of any route the app serves.
ROUTE_CEILING = "GET /problems/{code}"


def ratios(results: list[Result]) -> dict[str, dict[str, float | None]]:
    """For each scenario served by the app: its ratio to the framework ceiling, to the route
    ceiling, and to its own anchor, keyed by the anchor's name."""
    by_name = {result.name: result for result in results}
    table: dict[str, dict[str, float | None]] = {}
    for result in results:
        compared: dict[str, float | None] = {}
        for name in (CEILING, ROUTE_CEILING):
            ceiling = by_name.get(name)
            if (
                ceiling is not None
                and result.through_server
                and result.name
                not in (
                    CEILING,
                    ROUTE_CEILING,
                )
            ):
                compared[name] = ratio(result, ceiling)
        if result.anchor is not None and result.anchor in by_name:
            compared[result.anchor] = ratio(result, by_name[result.anchor])
        if compared:
            table[result.name] = compared
    return table


def format_table(results: list[Result]) -> str:
    """The results as a fixed-width text table, one row per scenario."""
    compared = ratios(results)
    header = (
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "cpu % work/load",
        "× ceiling",
        "× route",
        "× anchor",
    )
    rows = [header]
    for result in results:
        own = compared.get(result.name, {})
        anchor = (
            f"{_number(own[result.anchor])} of {result.anchor}"
            if result.anchor is not None and result.anchor in own
            else ""
        )
        rows.append(
            (
                result.name,
                f"{result.rate:.0f}",
                _number(result.p50_ms),
                _number(result.p99_ms),
                str(result.error_count),
                "/".join(f"{percent:.0f}" for percent in result.cpu_percent.values()),
                _number(own[CEILING]) if CEILING in own else "",
                _number(own[ROUTE_CEILING]) if ROUTE_CEILING in own else "",
                anchor,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        # Names and the anchor text read left to right; numbers line up on the right.
        cells = [
            cell.ljust(width) if column in (0, len(header) - 1) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
