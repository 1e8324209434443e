"""Traces: a server span per request, a child span per SQL statement, the trace passed on."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shelfwise.platform.request_id import REQUEST_ID_HEADER
from shelfwise.platform.tracing import create_tracer_provider, trace_http_client
from tests.factories import Tenants
from tests.observe import LogLines

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


def hex_trace_id(trace_id: int) -> str:
    return format(trace_id, "032x")


async def test_a_request_is_a_server_span_named_by_its_route_with_a_child_per_statement(
    client: httpx.AsyncClient, spans: InMemorySpanExporter, tenants: Tenants
) -> None:
    await client.get("/books/999", headers={REQUEST_ID_HEADER: "trace-me"})

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name == "GET /books/{book_id}"
    assert server.attributes is not None
    assert server.attributes["shelfwise.request_id"] == "trace-me"
    assert server.attributes["shelfwise.tenant_id"] == str(tenants.a.id)
    assert server.context is not None
    statements = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == server.context.span_id
    ]
    assert {s.kind for s in statements} == {SpanKind.CLIENT}
    sql = [str((s.attributes or {}).get("db.statement", "")) for s in statements]
    assert any(text.startswith("SELECT users.") for text in sql)  # the token's user
    assert any(text.startswith("SELECT books.") for text in sql)  # the book


async def test_a_callers_trace_is_continued(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    traceparent = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"

    await client.get("/books", headers={"traceparent": traceparent})

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.context is not None and server.parent is not None
    assert hex_trace_id(server.context.trace_id) == CALLER_TRACE_ID
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID


async def test_an_instrumented_http_client_passes_its_trace_to_the_service_it_calls(
    app: FastAPI, tenants: Tenants, spans: InMemorySpanExporter
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as outgoing:
        trace_http_client(outgoing, app.state.tracer_provider)
        await outgoing.get("/books")

    finished = spans.get_finished_spans()
    (caller,) = [s for s in finished if s.kind is SpanKind.CLIENT and s.name == "GET"]
    # In one process the caller's span is also the running one, so the service's span is
    # INTERNAL rather than SERVER; across a network it is SERVER, with the same parent.
    (served,) = [s for s in finished if s.name == "GET /books"]
    assert served.parent is not None and caller.context is not None
    assert served.parent.span_id == caller.context.span_id


async def test_a_crafted_baggage_header_does_not_make_the_service_log_a_line_per_entry(
    anonymous_client: httpx.AsyncClient, log_lines: LogLines
) -> None:
    # 2,730 malformed entries: OpenTelemetry's baggage reader warns once per entry.
    crafted = b",".join([b"\xe9"] * 2730)

    await anonymous_client.get("/books", headers={b"baggage": crafted})

    # The access line only (and the test client's own line about its request).
    assert [line["logger"] for line in log_lines.all()] == ["shelfwise.access", "httpx"]


async def test_probes_and_scrapes_are_not_traced(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    for path in ("/health", "/health/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200

    assert [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER] == []


async def test_a_failing_statement_marks_its_span_as_an_error(
    app: FastAPI, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    async def broken_sql() -> None:
        async with app.state.database.session() as session:
            await (await session.connection()).exec_driver_sql("SELECT no_such_column")

    app.add_api_route("/test/broken-sql", broken_sql, methods=["GET"])

    assert (await client.get("/test/broken-sql")).status_code == 500

    (failed,) = [
        s
        for s in spans.get_finished_spans()
        if (s.attributes or {}).get("db.statement") == "SELECT no_such_column"
    ]
    assert not failed.status.is_ok
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert not server.status.is_ok


# --- Export -------------------------------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


@pytest.fixture
def collector() -> Iterator[str]:
    """A stand-in OTLP/HTTP collector on a free port; yields its URL."""
    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(
    collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shelfwise-eu-1")
    provider = create_tracer_provider()

    with provider.get_tracer("test").start_as_current_span("work"):
        pass
    provider.shutdown()  # flushes the batch

    assert _Collector.received == [("/v1/traces", "application/x-protobuf")]
    assert provider.resource.attributes[SERVICE_NAME] == "shelfwise-eu-1"


def test_the_resource_attributes_variable_can_name_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=books-eu,deployment.environment=eu"
    )

    provider = create_tracer_provider()

    assert provider.resource.attributes[SERVICE_NAME] == "books-eu"
    assert provider.resource.attributes["deployment.environment"] == "eu"


def test_without_an_endpoint_spans_are_still_made_for_the_logs_trace_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = create_tracer_provider()

    with provider.get_tracer("test").start_as_current_span("work") as span:
        assert span.get_span_context().is_valid
    provider.shutdown()

    assert provider.resource.attributes[SERVICE_NAME] == "shelfwise"
