"""A request id for every request: accepted from the caller when sane, else generated.

The id is echoed in the ``X-Request-ID`` response header, stored on ``request.state`` for
handlers, included in every problem response, bound to every log line of the request and set
on its trace, so one id connects a client's report to the server's log lines and spans.
"""

import re
from collections.abc import Callable
from uuid import uuid4

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.platform.logs import bind_request_fields, request_scope

REQUEST_ID_HEADER = "X-Request-ID"
# An id from outside ends up in logs and headers: accept only short, plain tokens.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    """A random id: 32 hex digits."""
    return uuid4().hex


def request_id_of(connection: HTTPConnection) -> str | None:
    """The id ``RequestIdMiddleware`` gave this request, or ``None`` outside it."""
    request_id: str | None = getattr(connection.state, "request_id", None)
    return request_id


class RequestIdMiddleware:
    """Pure ASGI middleware that gives every HTTP request an id.

    ``generate`` makes new ids; pass a deterministic one in tests and notebooks. Pure ASGI (not
    ``BaseHTTPMiddleware``) so that it neither buffers responses nor changes how exceptions and
    context variables flow.
    """

    def __init__(self, app: ASGIApp, generate: Callable[[], str] = new_request_id) -> None:
        self._app = app
        self._generate = generate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        if incoming is not None and _SANE_REQUEST_ID.fullmatch(incoming):
            request_id = incoming
        else:
            request_id = self._generate()
        # `request.state` reads this dict, so every handler further in sees the id.
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        # Whatever the request binds for its log lines ends with it.
        with request_scope():
            bind_request_fields(request_id=request_id)
            await self._app(scope, receive, send_with_request_id)
