"""Traces: a span for each request, each SQL statement and each outgoing HTTP call, in one tree.

Every app gets a ``TracerProvider`` of its own and hands it to each instrumentation, rather
than setting OpenTelemetry's process-wide provider: that one can be set only once per process,
and tests and notebooks build many apps. Export follows OpenTelemetry's own variables: set
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and spans are sent
over OTLP/HTTP in batches; unset, spans are still made, so log lines carry trace ids and an
incoming ``traceparent`` is continued, but they go nowhere.
"""

import os
import re
from collections.abc import Iterable

import httpx
from fastapi import FastAPI
from opentelemetry import propagate
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv.metrics import MetricInstruments
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_SERVICE_NAME = "shelfwise"
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def create_tracer_provider() -> TracerProvider:
    """A provider for one app, exporting over OTLP when an endpoint is configured.

    ``OTEL_SERVICE_NAME`` or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` name the
    service; "shelfwise" when neither does. A batch processor, never the simple one: that one
    exports as each span ends, and an unreachable collector would then stall every request.
    """
    resource = Resource.create()  # from the OTEL_* variables
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    if any(os.environ.get(variable) for variable in OTLP_ENDPOINT_VARIABLES):
        # Imported only when used: the exporter pulls in protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def accept_trace_context_only() -> None:
    """Read only the W3C trace context (``traceparent``, ``tracestate``) from callers, not
    ``baggage``. ShelfWise uses no baggage, and OpenTelemetry logs a warning for each malformed
    entry of that header: one crafted request made the service write 2,731 lines, none with a
    request id. Process-wide, like OpenTelemetry's setting; ``OTEL_PROPAGATORS`` overrides it."""
    if "OTEL_PROPAGATORS" not in os.environ:
        propagate.set_global_textmap(TraceContextTextMapPropagator())


def trace_requests(app: FastAPI, provider: TracerProvider, untraced: Iterable[str] = ()) -> None:
    """A server span for each request to ``app`` (except to the paths in ``untraced``), named
    by its route template (``GET /books/{book_id}``), continuing the caller's trace when it
    sends ``traceparent``. Call before the app serves its first request: the middleware stack
    is built then."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        # Patterns searched for in the whole URL: anchor each path at its end.
        excluded_urls=",".join(f"{re.escape(path)}$" for path in sorted(untraced)),
        # One span per request, not three: receiving the body and sending the response
        # would each get a child span.
        exclude_spans=["receive", "send"],
    )


def trace_statements(engine: AsyncEngine, provider: TracerProvider) -> None:
    """A span for each SQL statement ``engine`` runs, as a child of the running span.

    ``SQLAlchemyInstrumentor().instrument(engine=...)`` is the documented entry point, but it
    is one per process (a second engine gets no spans) and silently does nothing on
    SQLAlchemy 2.1 without ``skip_dep_check``. ``EngineTracer`` is what it attaches to the
    engine; attaching it ourselves gives each app's engines their app's provider.
    tests/platform/test_tracing.py fails if a new release changes it.
    """
    connections = NoOpMeter("shelfwise").create_up_down_counter(
        MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE
    )
    tracer = provider.get_tracer(__name__)
    EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]


def trace_http_client(client: httpx.AsyncClient, provider: TracerProvider) -> None:
    """A client span for each request ``client`` sends, which passes the trace on in a
    ``traceparent`` header, so the service it calls continues the same trace."""
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
