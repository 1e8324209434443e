"""A link to PostgreSQL that breaks on demand, the way servers and networks break.

``FaultyLink`` is a TCP proxy in front of a real server. The app connects through it; a test (or
a notebook) then makes the database go away (``refuse``), stop answering (``hang``), or drop
every open connection as a restart does (``cut``), and brings it back (``heal``). Toxiproxy does
this in larger test rigs; it is a separate server to install, and these three faults take a page
of asyncio.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from sqlalchemy import URL, make_url

Mode = Literal["up", "hung", "refusing"]


class FaultyLink:
    """A proxy on 127.0.0.1 in front of the server of ``target_url`` (a unix socket or TCP)."""

    def __init__(self, target_url: str) -> None:
        target = make_url(target_url)
        socket_directory = target.query.get("host")
        self._unix_path = (
            f"{socket_directory}/.s.PGSQL.{target.port or 5432}"
            if isinstance(socket_directory, str)
            else None
        )
        self._target_host = target.host or "127.0.0.1"
        self._target_port = target.port or 5432
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0
        self.mode: Mode = "up"

    @property
    def connections(self) -> int:
        """Connections open through the link now (each counts its two ends)."""
        return len(self._writers)

    def url_for(self, url: str) -> str:
        """``url`` (the same database, user and password) reached through this link."""
        through: URL = make_url(url).set(host="127.0.0.1", port=self.port)
        through = through.difference_update_query(["host"])
        return through.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connect, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self._stop_listening()
        self._flowing.set()
        self.cut()

    def cut(self) -> None:
        """Drop every open connection, as a database restart or a failover does."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def refuse(self) -> None:
        """The server is down: open connections drop and new ones are refused."""
        self.mode = "refusing"
        await self._stop_listening()
        self.cut()

    def hang(self) -> None:
        """The server stops answering (a stopped process, a network partition): connections
        open and bytes go out, but nothing ever comes back."""
        self.mode = "hung"
        self._flowing.clear()

    async def heal(self) -> None:
        """The server is back."""
        if self._server is None:
            await self.start()
        self.mode = "up"
        self._flowing.set()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._flowing.wait()  # a hung server accepts, then says nothing
            if self._unix_path:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(
                    self._unix_path
                )
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self._target_host, self._target_port
                )
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )
        for each in (writer, upstream_writer):
            each.transport.abort()
            self._writers.discard(each)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._flowing.wait()  # while hung, what arrives is held back
            writer.write(data)
            await writer.drain()
        writer.transport.abort()


@contextlib.asynccontextmanager
async def faulty_link(target_url: str) -> AsyncIterator[FaultyLink]:
    """A started ``FaultyLink`` to ``target_url``'s server, closed on exit."""
    link = FaultyLink(target_url)
    await link.start()
    try:
        yield link
    finally:
        await link.close()
