"""The drill: a tenant's failed order, found from the request id in its problem alone, by
following the log line to the trace and the trace to the metric."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from shelfwise.main import create_app
from shelfwise.platform.db import create_engine
from shelfwise.platform.settings import Settings
from tests.conftest import client_for
from tests.factories import Tenants
from tests.observe import LogLines, capture_logs, recording_tracer_provider, samples, spans_of_trace
from tests.test_api import two_stocked_books

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

STATEMENT_TIMEOUT_SECONDS = 0.5


@pytest.fixture
async def impatient_app(
    app_settings: Settings, tenants: Tenants, spans: InMemorySpanExporter
) -> AsyncIterator[FastAPI]:
    """The app, its statements cancelled after half a second."""
    database = app_settings.database.model_copy(
        update={"statement_timeout_seconds": STATEMENT_TIMEOUT_SECONDS}
    )
    settings = app_settings.model_copy(update={"database": database})
    app = create_app(settings, tracer_provider=recording_tracer_provider(spans))
    async with app.router.lifespan_context(app):
        yield app


async def test_a_failed_order_is_traced_from_its_request_id_to_the_statement_and_the_metric(
    impatient_app: FastAPI, tenants: Tenants, spans: InMemorySpanExporter, database_url: str
) -> None:
    async with client_for(impatient_app, tenants.a) as client:
        book_id, _ = await two_stocked_books(client)
        # An operator's long transaction holds the book's stock row.
        owner = create_engine(database_url)
        async with owner.connect() as stocktake:
            await stocktake.execute(
                text("SELECT quantity FROM stock WHERE book_id = :id FOR UPDATE"), {"id": book_id}
            )
            with capture_logs() as log:
                failed = await client.post(
                    "/orders", json={"lines": [{"book_id": book_id, "quantity": 1}]}
                )
            await stocktake.rollback()
        await owner.dispose()
        metrics = (await client.get("/metrics")).text

    # The tenant reports a request id, and nothing else.
    assert (failed.status_code, failed.json()["code"]) == (503, "database_timeout")
    request_id = failed.json()["request_id"]

    # 1. The log: whose request it was, what the database said, and the trace id.
    lines = log.where(request_id=request_id)
    (access,) = [line for line in lines if line["logger"] == "shelfwise.access"]
    assert (access["route"], access["status"]) == ("/orders", 503)
    assert access["tenant_id"] == str(tenants.a.id)
    (cause,) = [line for line in lines if line["logger"] == "shelfwise.platform.db"]
    assert (cause["problem"], cause["sqlstate"]) == ("database_timeout", "57014")
    assert "statement timeout" in cause["database_said"]
    assert {line["trace_id"] for line in lines} == {access["trace_id"]}

    # 2. The trace: the statement that waited, and for how long.
    trace = spans_of_trace(spans, access["trace_id"])
    (server,) = [span for span in trace if span.kind is SpanKind.SERVER]
    assert server.name == "POST /orders"
    statements = [span for span in trace if span.kind is SpanKind.CLIENT]
    slowest = max(statements, key=lambda span: (span.end_time or 0) - (span.start_time or 0))
    assert str((slowest.attributes or {})["db.statement"]).startswith("UPDATE stock")
    assert not slowest.status.is_ok
    waited = ((slowest.end_time or 0) - (slowest.start_time or 0)) / 1e9
    assert waited >= STATEMENT_TIMEOUT_SECONDS * 0.9

    # 3. The metric that moved, for the alert that should have fired.
    problems = samples(metrics, "shelfwise_problems_total")
    assert problems[frozenset({("route", "/orders"), ("code", "database_timeout")})] == 1


async def test_each_tenants_lines_carry_only_its_own_requests(
    app: FastAPI, tenants: Tenants, log_lines: LogLines
) -> None:
    async with client_for(app, tenants.a) as a, client_for(app, tenants.b) as b:
        await a.get("/books", headers={"X-Request-ID": "from-a"})
        await b.get("/books", headers={"X-Request-ID": "from-b"})

    assert {line["request_id"] for line in log_lines.where(tenant_id=str(tenants.a.id))} == {
        "from-a"
    }
    assert {line["request_id"] for line in log_lines.where(tenant_id=str(tenants.b.id))} == {
        "from-b"
    }
