"""The app under test: one uvicorn worker in a subprocess, and the CPU pinning around it."""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Cores:
    """Where the work runs (the server, or the bench while it runs an anchor) and where the
    load generator runs. Both None when pinning is unavailable or there is only one core."""

    work: int | None
    load: int | None

    @property
    def pinned(self) -> bool:
        return self.work is not None

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (os.sched_setaffinity unavailable, or fewer than 2 cores)"
        return (
            f"server and anchors on core {self.work}, load generator on core {self.load}; "
            "PostgreSQL not pinned"
        )


def plan_cores() -> Cores:
    """Two cores of the ones this process may use, if pinning works here (Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return Cores(None, None)
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return Cores(None, None)
    return Cores(work=allowed[0], load=allowed[1])


def pin(core: int | None) -> None:
    """Run this process from now on on ``core`` only (no-op when not pinning).

    Children started afterwards inherit it, which is how the server gets its core.
    """
    if core is not None:
        os.sched_setaffinity(0, {core})


@dataclass(frozen=True)
class Server:
    process: "subprocess.Popen[bytes]"
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid``, from /proc (Linux); NaN elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    # The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def uvicorn_server(
    app_dir: Path, environment: dict[str, str], core: int | None, log: Path
) -> Iterator[Server]:
    """Serve ``app_dir``'s ``shelfwise`` with one uvicorn worker on a free port until exit."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        # --app-dir puts the part's folder first on sys.path, as `make serve PART=N` does.
        "--app-dir",
        str(app_dir),
        "--factory",
        "shelfwise.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        # Writing an access log line per request would be measured as the framework's cost.
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    allowed = os.sched_getaffinity(0) if core is not None else None
    pin(core)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=os.environ | environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    if allowed is not None:
        os.sched_setaffinity(0, allowed)
    try:
        yield Server(process, "127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_until_healthy(server: Server, log: Path) -> None:
    """Poll ``GET /health`` until the server answers 200; fail with its log if it dies or
    takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        while time.monotonic() < deadline:
            if (code := server.process.poll()) is not None:
                raise RuntimeError(f"the server exited with {code}:\n{tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(
        f"the server did not answer within {STARTUP_TIMEOUT_SECONDS} s:\n{tail(log)}"
    )


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
