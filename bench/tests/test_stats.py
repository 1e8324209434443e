"""The bench's pure logic: arithmetic, the table, tenancy detection. No server, no database."""

from collections import Counter

import pytest

from bench.stats import Result, Sample, format_table, percentile, ratio, ratios, summarize
from bench.tenancy import has_tenancy
from bench.workload import isbn13


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(50, 5.0), (99, 10.0), (100, 10.0), (10, 1.0), (11, 2.0)],
)
def test_percentile_is_nearest_rank(percent: float, expected: float) -> None:
    values = [float(n) for n in range(1, 11)]

    assert percentile(values, percent) == expected


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summarize_counts_successes_over_the_window_and_keeps_errors_apart() -> None:
    sample = Sample(
        latencies=[0.004, 0.001, 0.002, 0.003], errors=Counter({"HTTP 500": 2}), seconds=2.0
    )

    result = summarize("GET /books/{id}", sample, anchor="bare ORM read")

    assert result.rate == 2.0
    assert (result.p50_ms, result.p99_ms) == (2.0, 4.0)
    assert result.errors == {"HTTP 500": 2}
    assert result.error_count == 2


def test_a_scenario_without_successes_has_no_latency() -> None:
    result = summarize("POST /orders", Sample(errors=Counter({"HTTP 500": 3}), seconds=1.0))

    assert (result.rate, result.p50_ms, result.p99_ms) == (0.0, None, None)


def a_result(
    name: str,
    rate: float,
    *,
    anchor: str | None = None,
    through_server: bool = True,
    errors: dict[str, int] | None = None,
    cpu_percent: dict[str, float] | None = None,
) -> Result:
    return Result(
        name=name,
        rate=rate,
        p50_ms=1.0,
        p99_ms=2.0,
        requests=int(rate),
        errors=errors or {},
        cpu_percent=cpu_percent or {},
        anchor=anchor,
        through_server=through_server,
    )


RESULTS = [
    a_result("GET /health", 1000.0, cpu_percent={"server": 99.6, "load generator": 30.2}),
    a_result("GET /problems/{code}", 440.0),
    a_result("bare ORM read", 400.0, through_server=False, cpu_percent={"bench": 80.0}),
    a_result("GET /books/{id}", 220.0, anchor="bare ORM read"),
    a_result("raw asyncpg order", 0.0, through_server=False),
    a_result("POST /orders", 90.0, anchor="raw asyncpg order", errors={"HTTP 500": 1}),
]


def test_app_scenarios_are_compared_with_both_ceilings_and_their_own_anchor() -> None:
    assert ratios(RESULTS) == {
        "GET /books/{id}": {
            "GET /health": 0.22,
            "GET /problems/{code}": 0.5,
            "bare ORM read": 0.55,
        },
        # An anchor that did nothing gives no ratio rather than a division by zero.
        "POST /orders": {
            "GET /health": 0.09,
            "GET /problems/{code}": 90 / 440,
            "raw asyncpg order": None,
        },
    }
    assert ratio(RESULTS[3], RESULTS[0]) == 0.22


def test_the_table_has_a_row_per_scenario_with_its_ratios() -> None:
    lines = format_table(RESULTS).splitlines()
    words = [" ".join(line.split()) for line in lines]

    assert words == [
        "scenario req/s p50 ms p99 ms errors cpu % work/load × ceiling × route × anchor",
        "GET /health 1000 1.00 2.00 0 100/30",
        "GET /problems/{code} 440 1.00 2.00 0",
        "bare ORM read 400 1.00 2.00 0 80",
        "GET /books/{id} 220 1.00 2.00 0 0.22 0.50 0.55 of bare ORM read",
        "raw asyncpg order 0 1.00 2.00 0",
        "POST /orders 90 1.00 2.00 1 0.09 0.20 — of raw asyncpg order",
    ]
    # Numbers are right-aligned under their heading.
    rate_ends = lines[0].index("req/s") + len("req/s")
    assert lines[1].index("1000") + len("1000") == rate_ends
    assert lines[4].index("220") + len("220") == rate_ends


def test_isbns_are_valid_isbn_13s() -> None:
    assert isbn13(0) == "9780000000002"
    assert isbn13(26) == "9780000000262"


def test_tenancy_is_detected_by_the_login_route() -> None:
    assert has_tenancy({"paths": {"/health": {}, "/auth/token": {}}})
    assert not has_tenancy({"paths": {"/health": {}, "/books": {}}})
