"""A hot standby of the test server, for the read-replica tests and part 11's notebook.

It is started the way a replica is in production: ``pg_basebackup -R`` copies the primary over
a replication connection and leaves the copy configured to stream from it. That needs the
server's files on this machine (the embedded server, or a local install); for a server
elsewhere, ``SHELFWISE_TEST_POSTGRES_REPLICA_URL`` names a standby of it.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

REPLICA_URL_VARIABLE = "SHELFWISE_TEST_POSTGRES_REPLICA_URL"


@contextlib.asynccontextmanager
async def hot_standby(admin_url: URL) -> AsyncIterator[URL]:
    """The admin URL of a hot standby of ``admin_url``'s server, stopped and deleted on exit.

    The server's own binaries run as the user who owns its data, as PostgreSQL requires.
    """
    configured = os.environ.get(REPLICA_URL_VARIABLE)
    if configured:
        yield make_url(configured)
        return
    bin_directory, data_directory = await _server_paths(admin_url)
    socket_directory = admin_url.query.get("host")
    if not isinstance(socket_directory, str) or not Path(data_directory).is_dir():
        raise RuntimeError(
            f"cannot start a standby of a server whose files are not on this machine: "
            f"set {REPLICA_URL_VARIABLE} to a postgresql+asyncpg:// URL of a hot standby"
        )
    owner = Path(data_directory).stat().st_uid
    run_as = owner if os.geteuid() != owner else None
    directory = Path(tempfile.mkdtemp(prefix="shelfwise-standby-"))
    standby_data = directory / "data"
    os.chown(directory, owner, -1)
    directory.chmod(0o755)  # the socket must be reachable by this process

    def run(program: str, *arguments: str) -> None:
        command = [str(Path(bin_directory) / program), *arguments]
        subprocess.run(command, check=True, capture_output=True, timeout=60, user=run_as)

    try:
        run("pg_basebackup", "-h", socket_directory, "-p", str(admin_url.port or 5432),
            "-U", admin_url.username or pwd.getpwuid(owner).pw_name, "-D", str(standby_data),
            "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        run("pg_ctl", "-D", str(standby_data), "-l", str(directory / "log"), "-w", "-o",
            f"-c listen_addresses='' -c unix_socket_directories='{directory}' -c port=5432",
            "start")  # fmt: skip
        try:
            yield admin_url.set(port=5432).update_query_dict({"host": str(directory)})
        finally:
            run("pg_ctl", "-D", str(standby_data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _server_paths(admin_url: URL) -> tuple[str, str]:
    """The server's binaries and data directory, as the server itself reports them."""
    engine = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            bin_directory = await connection.scalar(
                text("SELECT setting FROM pg_config WHERE name = 'BINDIR'")
            )
            data_directory = await connection.scalar(text("SHOW data_directory"))
    finally:
        await engine.dispose()
    return str(bin_directory), str(data_directory)
