"""Logs as one JSON object per line, each carrying the request, tenant and trace it belongs to.

Code logs as it always has (``logging.getLogger(__name__)`` or ``structlog.get_logger()``); it
never passes ids around. The ids come from context: ``request_scope`` binds the request id
for the length of a request, ``authenticate`` adds the tenant and user, and every line logged
inside an OpenTelemetry span gets the span's trace and span ids. The standard library's
records (SQLAlchemy's, uvicorn's, ours) and structlog's events go through one chain of
processors and come out in one format.
"""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor

from shelfwise.platform.settings import LoggingSettings


def add_trace_ids(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Add the current span's ids, in the hex form tracing backends search by, and whether
    the trace was sampled: an unsampled trace's id still matches other services' lines, but
    the tracing backend has no trace under it."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = format(span_context.trace_id, "032x")
        event["span_id"] = format(span_context.span_id, "016x")
        event["trace_sampled"] = span_context.trace_flags.sampled
    return event


def drop_copies_of_the_message(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Keep the message once, as ``event``: a record formatted by another handler first has a
    ``message`` too, and uvicorn's carry a ``color_message`` with terminal colour codes."""
    event.pop("message", None)
    event.pop("color_message", None)
    return event


# What every line gets, whoever logged it.
SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_trace_ids,
]


class _ShelfwiseHandler(logging.StreamHandler[TextIO]):
    """The one handler ``configure_logging`` owns: found and replaced on the next call, while
    handlers others installed (pytest's capture, a notebook's) stay."""


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Send every log record of the process to ``stream`` (stdout) as JSON (or, for a
    terminal, as aligned text), at ``settings.level``.

    Logging is per process, not per app; calling this again (each ``create_app`` does)
    replaces what the previous call installed and nothing else.
    """
    structlog.configure(
        processors=[
            # First: a line below the level costs nothing more (stdlib records are filtered
            # by their logger before they get here).
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Standard-library records: the same processors, plus the fields passed in `extra=`.
        foreign_pre_chain=[
            *SHARED_PROCESSORS,
            structlog.stdlib.ExtraAdder(),
            drop_copies_of_the_message,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _ShelfwiseHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _ShelfwiseHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # uvicorn's loggers have handlers of their own; route them through ours instead. Its
    # access line is written after the request's context is gone, so ours (RequestTelemetry)
    # takes its place, with the request's ids.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # One warning per malformed entry of a caller's baggage header (if OTEL_PROPAGATORS turns
    # baggage on): a caller must not choose how much the service logs.
    logging.getLogger("opentelemetry.baggage.propagation").setLevel(logging.ERROR)


@contextmanager
def request_scope() -> Iterator[None]:
    """Let code inside the block bind fields for the lines it logs
    (``bind_request_fields``, ``structlog.contextvars.bind_contextvars``) until the block ends.

    Unlike ``structlog.contextvars.bound_contextvars``, which only unbinds its own keys, this
    restores the whole context on exit: what a request bound never reaches the next one, even
    when both run in one task (as under httpx's ``ASGITransport`` in tests).
    """
    before = structlog.contextvars.get_contextvars()
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**before)


def bind_request_fields(**fields: str | int) -> None:
    """Add ``fields`` to every line logged for the rest of the request (its ``request_scope``),
    and to the request's span as ``shelfwise.<name>`` attributes, so a trace can be found by
    the same ids as the log lines."""
    structlog.contextvars.bind_contextvars(**fields)
    span = trace.get_current_span()
    for name, value in fields.items():
        span.set_attribute(f"shelfwise.{name}", value)
