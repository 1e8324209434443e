"""Structured logs: one JSON object per line, with the request, tenant and trace from context."""

import io
import json
import logging

import httpx
import pytest
import structlog
from fastapi import FastAPI

from shelfwise.platform.logs import configure_logging
from shelfwise.platform.request_id import REQUEST_ID_HEADER
from shelfwise.platform.settings import LoggingSettings
from tests.factories import Tenants
from tests.observe import LogLines

TRACE_ID_LENGTH = 32  # hex digits of a 128-bit trace id


async def test_every_line_of_a_request_carries_its_request_tenant_user_and_trace(
    client: httpx.AsyncClient, log_lines: LogLines, tenants: Tenants
) -> None:
    response = await client.get("/books/999", headers={REQUEST_ID_HEADER: "report-42"})

    assert response.status_code == 404
    (line,) = log_lines.where(request_id="report-42")
    assert line["logger"] == "shelfwise.access"
    assert (line["method"], line["path"], line["route"]) == (
        "GET",
        "/books/999",
        "/books/{book_id}",
    )
    assert (line["status"], line["problem"]) == (404, "book_not_found")
    assert (line["tenant_id"], line["user_id"]) == (str(tenants.a.id), tenants.a.user_id)
    assert len(line["trace_id"]) == TRACE_ID_LENGTH
    assert line["trace_sampled"] is True
    assert line["duration_ms"] >= 0


async def test_lines_logged_by_the_standard_library_inside_a_request_get_the_same_fields(
    app: FastAPI, client: httpx.AsyncClient, log_lines: LogLines, tenants: Tenants
) -> None:
    async def log_something() -> dict[str, str]:
        logging.getLogger("shelfwise.test").warning("reserved %d copies", 3)
        return {}

    app.add_api_route("/test/log", log_something, methods=["GET"])

    await client.get("/test/log", headers={REQUEST_ID_HEADER: "std-1"})

    (line,) = log_lines.where(logger="shelfwise.test")
    assert line["event"] == "reserved 3 copies"
    assert (line["level"], line["request_id"]) == ("warning", "std-1")
    assert "trace_id" in line


async def test_nothing_a_request_bound_reaches_the_next_request_or_the_caller(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, log_lines: LogLines
) -> None:
    # Under httpx's ASGI transport the app runs in the test's own task: a leak would show.
    await client.get("/books", headers={REQUEST_ID_HEADER: "first"})
    await anonymous_client.get("/books", headers={REQUEST_ID_HEADER: "second"})

    (second,) = log_lines.where(request_id="second")
    assert second["status"] == 401
    assert "tenant_id" not in second
    assert structlog.contextvars.get_contextvars() == {}


async def test_a_long_path_is_cut_on_the_access_line(
    client: httpx.AsyncClient, log_lines: LogLines
) -> None:
    await client.get("/books/" + "%01" * 5000, headers={REQUEST_ID_HEADER: "long-1"})

    (line,) = log_lines.where(request_id="long-1")
    assert line["path"].startswith("/books/\x01")
    assert len(line["path"]) == 200


async def test_probes_and_scrapes_get_no_access_line(
    client: httpx.AsyncClient, log_lines: LogLines
) -> None:
    for path in ("/health", "/health/ready", "/metrics", "/books"):
        await client.get(path)

    assert [line["path"] for line in log_lines.where(logger="shelfwise.access")] == ["/books"]


def test_uvicorn_lines_come_out_as_json_and_its_access_line_is_off() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(), stream)
    try:
        logging.getLogger("uvicorn.error").info("Started server process")
        logging.getLogger("uvicorn.access").info("GET / 200")
    finally:
        configure_logging(LoggingSettings())

    (line,) = [json.loads(each) for each in stream.getvalue().splitlines()]
    assert (line["logger"], line["event"]) == ("uvicorn.error", "Started server process")


def test_configuring_again_replaces_only_its_own_handler() -> None:
    someone_else_s = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(someone_else_s)
    try:
        configure_logging(LoggingSettings())
        configure_logging(LoggingSettings())
        ours = [h for h in root.handlers if type(h).__name__ == "_ShelfwiseHandler"]
        assert len(ours) == 1
        assert someone_else_s in root.handlers
    finally:
        root.removeHandler(someone_else_s)


@pytest.mark.parametrize(
    ("level", "shown"), [("INFO", ["info", "warning"]), ("WARNING", ["warning"])]
)
def test_the_level_setting_drops_quieter_lines(level: str, shown: list[str]) -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level=level), stream)  # type: ignore[arg-type]
    try:
        logger = structlog.stdlib.get_logger("shelfwise.test")
        logger.debug("debug")
        logger.info("info")
        logger.warning("warning")
    finally:
        configure_logging(LoggingSettings())

    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == shown


def test_the_console_format_is_text_for_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="console"), stream)
    try:
        with structlog.contextvars.bound_contextvars(request_id="abc"):
            structlog.stdlib.get_logger("shelfwise.test").info("order placed", order_id=7)
    finally:
        configure_logging(LoggingSettings())

    text = stream.getvalue()
    assert "order placed" in text
    assert "request_id=abc" in text
    assert "order_id=7" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
