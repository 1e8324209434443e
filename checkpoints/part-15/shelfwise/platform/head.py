"""HEAD on every GET route: the GET's status and headers without its body (RFC 9110, 9.3.2)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    """Serves HEAD as GET and drops the body.

    Starlette answers HEAD for its own routes; FastAPI's API routes serve only the methods
    they list, so without this a monitor's or a cache's HEAD request gets 405.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self._app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await self._app(as_get, receive, send_headers_only)
        finally:
            # The router records the route it matched in the scope it was given; hand it out
            # to the middleware around this one, which label metrics and logs by route.
            if "route" in as_get:
                scope["route"] = as_get["route"]
