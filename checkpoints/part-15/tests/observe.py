"""Read what an app logs, traces and measures, in tests and in the notebooks."""

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from shelfwise.platform.logs import configure_logging
from shelfwise.platform.settings import LoggingSettings


def recording_tracer_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A provider that hands each span to ``exporter`` as it ends (simple, not batched: an
    in-memory exporter cannot block)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class LogLines:
    """The JSON lines logged since ``capture_logs`` started, parsed."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def where(self, **fields: Any) -> list[dict[str, Any]]:
        """The lines whose fields have these values."""
        return [line for line in self.all() if fields.items() <= line.items()]


@contextmanager
def capture_logs(settings: LoggingSettings | None = None) -> Iterator[LogLines]:
    """Send the process's log lines to memory inside the block (after ``create_app``, which
    configures logging for stdout), and back to stdout after it."""
    stream = io.StringIO()
    configure_logging(settings or LoggingSettings(), stream)
    try:
        yield LogLines(stream)
    finally:
        configure_logging(settings or LoggingSettings())


def spans_of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    """The finished spans of one trace (``trace_id`` in hex, as the logs have it)."""
    return [
        span
        for span in exporter.get_finished_spans()
        if span.context is not None and format(span.context.trace_id, "032x") == trace_id
    ]


def samples(exposition: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples called ``name`` in a /metrics answer, by their labels."""
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }
