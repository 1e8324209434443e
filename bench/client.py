"""A minimal HTTP/1.1 keep-alive client for the measured requests.

httpx spends about a millisecond of CPU per request, so a load generator built on it saturates
its core long before uvicorn does and would measure itself. This one writes the request bytes
and reads a ``Content-Length`` response: all the app's responses are that simple. Each worker
owns one connection, as in wrk, so the concurrency is the number of connections.
"""

import asyncio
import json
from typing import Any


class UnsupportedResponseError(Exception):
    """A response this client does not parse (chunked, or without a length)."""


class Connection:
    """One keep-alive connection to ``host:port``, opened on first use and after a close."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> int:
        """Send one request, read the whole response, return its status code."""
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
            if "content-length" not in fields:
                raise UnsupportedResponseError(head.split("\r\n", 1)[0])
            await reader.readexactly(int(fields["content-length"]))
        except Exception:
            # A failed exchange leaves the stream in an unknown state; the next one reconnects.
            self.close()
            raise
        if fields.get("connection", "").strip() == "close":
            self.close()
        return int(head[9:12])

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
