"""The composition root: the one place that wires settings and features into a FastAPI app."""

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import Depends, FastAPI
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr
from redis.exceptions import RedisError
from sqlalchemy import func, make_url, select
from sqlalchemy.exc import DBAPIError

from shelfwise.catalog.router import create_router as create_catalog_router
from shelfwise.identity.dependencies import authenticate
from shelfwise.identity.errors import TenantSuspendedError, TokenRejectedError
from shelfwise.identity.repository import install_login_lookup, user_policies
from shelfwise.identity.router import create_router as create_identity_router
from shelfwise.identity.tokens import TokenSigner
from shelfwise.inventory.router import create_router as create_inventory_router
from shelfwise.limits.errors import RateLimitedError, TooManyConcurrentRequestsError
from shelfwise.limits.metrics import LimitsCollector
from shelfwise.limits.middleware import TenantLimitsMiddleware
from shelfwise.limits.plans import TenantLimits
from shelfwise.orders.jobs import OrderJobResources, order_jobs
from shelfwise.orders.router import create_router as create_orders_router
from shelfwise.platform.cache import opened_cache
from shelfwise.platform.db import (
    Base,
    Database,
    DatabaseBusyError,
    DatabaseConflictError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    grant_to_app_role,
    is_outage,
    sqlstate_of,
)
from shelfwise.platform.dependencies import DatabaseDep
from shelfwise.platform.head import HeadAsGetMiddleware
from shelfwise.platform.jobs import Jobs, create_jobs
from shelfwise.platform.logs import configure_logging
from shelfwise.platform.mail import create_mailer
from shelfwise.platform.metrics import RequestTelemetry, install_metrics
from shelfwise.platform.problems import (
    install_problem_handlers,
    problem_responses,
    require_declared_media_type,
)
from shelfwise.platform.rate_limit import LocalLimiter, RateLimiter, RedisLimiter
from shelfwise.platform.request_id import RequestIdMiddleware, new_request_id
from shelfwise.platform.resilience import (
    AdmissionControl,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    OverloadedError,
)
from shelfwise.platform.settings import Settings, load_settings
from shelfwise.platform.tracing import (
    accept_trace_context_only,
    create_tracer_provider,
    trace_http_client,
    trace_requests,
    trace_statements,
)
from shelfwise.tenancy.cache import TenantCache
from shelfwise.tenancy.config import TenantConfig
from shelfwise.tenancy.flags import FeatureFlags
from shelfwise.tenancy.jobs import tenant_label
from shelfwise.tenancy.orm_filter import install_orm_filter
from shelfwise.tenancy.row_security import (
    LOCK_NOT_AVAILABLE,
    apply_policies,
    install_row_security,
    row_security_binds,
    tenant_policies,
    tenant_scoped_tables,
)
from shelfwise.tenancy.secrets import SecretBox, TenantSecrets

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0
# A call to another service (a distributor's webhook) gives up after this long.
OUTBOUND_TIMEOUT_SECONDS = 10.0
# The advisory lock that makes preparing the database one process at a time (any fixed number).
PREPARING_LOCK = 4_807_013
PREPARING_ATTEMPTS = 25
# Asked every few seconds by machines (orchestrators, Prometheus): never shed, traced or
# logged one line each, so that they work under overload and do not drown the requests.
PROBE_PATHS = frozenset({"/health", "/health/ready", "/metrics"})

# What any route that uses the database may answer instead, with 503 and Retry-After.
UNAVAILABLE_ERRORS = (
    OverloadedError,
    DeadlineExceededError,
    DatabaseUnavailableError,
    DatabaseBusyError,
    DatabaseTimeoutError,
    DatabaseConflictError,
    CircuitOpenError,
)


async def health() -> dict[str, str]:
    """Report that the process is up (liveness). Touches no database, so a database outage
    never makes an orchestrator restart a process that would recover on its own."""
    return {"status": "ok"}


async def readiness(database: DatabaseDep) -> dict[str, str]:
    """Report whether the process can serve requests now (readiness): one round trip to the
    database, through its circuit breaker, within 2 s; 503 with ``Retry-After`` while it cannot.
    Give the orchestrator's probe a timeout above 2 s (Kubernetes' default is 1 s)."""
    await database.check(timeout_seconds=READINESS_TIMEOUT_SECONDS)
    return {"status": "ok", "database": "ok"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the process's resources when the app starts and release them when it stops.

    They live on ``app.state``, never in module globals, so every app has its own.
    """
    tracer_provider: TracerProvider = app.state.tracer_provider
    try:
        async with (
            connected_database(app),
            connected_cache(app),
            connected_jobs(app),
            connected_limits(app),
        ):
            yield
    finally:
        # However the app stops: sends the spans still batched (this takes up to the
        # exporter's timeout when the collector is unreachable).
        tracer_provider.shutdown()


@asynccontextmanager
async def opened_database(
    settings: Settings, tracer_provider: TracerProvider
) -> AsyncIterator[Database]:
    """The database, prepared, traced and behind both tenant walls, for as long as the block
    runs: the API's and the worker's alike."""
    await prepare_database(settings)
    resilience = settings.resilience
    breaker = CircuitBreaker(
        "the database",
        failures=resilience.breaker_failures,
        reset_seconds=resilience.breaker_reset_seconds,
        is_failure=is_outage,
    )
    database = Database.connect(
        settings.database.url.get_secret_value(), settings.database, breaker
    )
    try:
        for engine in filter(None, (database.engine, database.replica)):
            trace_statements(engine, tracer_provider)
        for session_factory in database.session_factories:
            install_orm_filter(session_factory)
            install_row_security(session_factory)
        await warn_if_row_level_security_is_off(database)
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def connected_database(app: FastAPI) -> AsyncIterator[None]:
    """The database and the per-process tenant services on ``app.state``, for as long as the
    block runs."""
    settings: Settings = app.state.settings
    async with opened_database(settings, app.state.tracer_provider) as database:
        app.state.database = database
        ttl = settings.tenant_config_ttl_seconds
        # One of each per process; they read through the request's own session.
        app.state.tenant_config = TenantConfig(settings.tenant_defaults, ttl)
        app.state.feature_flags = FeatureFlags(ttl)
        app.state.tenant_secrets = TenantSecrets(SecretBox(settings.secrets.keys))
        yield


@asynccontextmanager
async def opened_jobs(
    settings: Settings,
    database: Database,
    tracer_provider: TracerProvider,
    config: TenantConfig | None = None,
    secrets: TenantSecrets | None = None,
) -> AsyncIterator[Jobs]:
    """Every job the service has, on the broker ``settings`` name, for as long as the block
    runs; when it ends, the jobs running in this process finish first. ``config`` and
    ``secrets``: the process's own, if it has them already (the API does)."""
    async with httpx.AsyncClient(timeout=OUTBOUND_TIMEOUT_SECONDS) as http:
        trace_http_client(http, tracer_provider)
        resources = OrderJobResources(
            database=database,
            config=config
            or TenantConfig(settings.tenant_defaults, settings.tenant_config_ttl_seconds),
            secrets=secrets or TenantSecrets(SecretBox(settings.secrets.keys)),
            mailer=create_mailer(settings.mail),
            http=http,
            sender=settings.mail.sender,
        )
        jobs = create_jobs(settings.jobs, order_jobs(resources), (tenant_label,))
        await jobs.start()
        try:
            yield jobs
        finally:
            await jobs.stop()


@asynccontextmanager
async def connected_jobs(app: FastAPI) -> AsyncIterator[None]:
    """The jobs on ``app.state``: without a stream (the quick start) this process runs them."""
    state = app.state
    async with opened_jobs(
        state.settings,
        state.database,
        state.tracer_provider,
        state.tenant_config,
        state.tenant_secrets,
    ) as jobs:
        state.jobs = jobs
        yield


@asynccontextmanager
async def connected_cache(app: FastAPI) -> AsyncIterator[None]:
    """The cache, its Redis traced, listening for other processes' invalidations."""
    settings = app.state.settings.cache
    async with opened_cache(settings) as cache:
        if cache.redis is not None:
            RedisInstrumentor().instrument_client(
                cache.redis, tracer_provider=app.state.tracer_provider
            )
        listener = asyncio.create_task(cache.listen_for_invalidations())
        app.state.cache = cache
        tenant_cache = TenantCache.for_settings(cache, app.state.settings)
        app.state.tenant_cache = tenant_cache
        try:
            yield
        finally:
            await tenant_cache.settled()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


@asynccontextmanager
async def connected_limits(app: FastAPI) -> AsyncIterator[None]:
    """The tenants' limits on ``app.state``, counted in the cache's Redis when there is one,
    else in this process (the quick start)."""
    state = app.state
    cache = state.cache
    breaker = CircuitBreaker(
        "the rate limiter's redis",
        # Not one: a reply that comes late because this process's event loop was busy should
        # not make the limits per process for a while. Three in a row is Redis, not us.
        failures=3,
        reset_seconds=state.settings.cache.redis_retry_seconds,
        is_failure=lambda error: isinstance(error, RedisError),
    )
    shared = RedisLimiter(cache.redis) if cache.redis is not None else None
    state.tenant_limits = TenantLimits(
        state.database,
        state.tenant_config,
        RateLimiter(shared, LocalLimiter(), breaker),
        ttl_seconds=state.settings.tenant_config_ttl_seconds,
    )
    try:
        yield
    finally:
        await state.tenant_limits.close()


async def prepare_database(settings: Settings) -> None:
    """Until migrations arrive (part 17), the schema comes straight from the models.

    On PostgreSQL the tables' owner (``database.admin_url``) creates the tables and their
    row-level security policies, and lets the app's role read and write them. When policies
    must change on a database in use, their locks may not come at once: it tries again, up to
    ``PREPARING_ATTEMPTS`` times, about 0.3 s apart.
    """
    app_url = settings.database.url.get_secret_value()
    admin_url = settings.database.admin_url
    owner = Database.connect(admin_url.get_secret_value() if admin_url else app_url)
    try:
        for attempt in range(1, PREPARING_ATTEMPTS + 1):
            try:
                await _prepare(owner, app_url, with_grants=admin_url is not None)
                return
            except DBAPIError as error:
                if sqlstate_of(error) != LOCK_NOT_AVAILABLE:
                    raise
                if attempt == PREPARING_ATTEMPTS:
                    raise DatabaseBusyError(
                        "Live requests kept the tables the row-level security policies need. "
                        "Run it again."
                    ) from error
                await asyncio.sleep(random.uniform(0.1, 0.5))
    finally:
        await owner.dispose()


async def _prepare(owner: Database, app_url: str, *, with_grants: bool) -> None:
    async with owner.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # One preparer at a time: replicas starting together, or a command run during a
            # start, would otherwise update the same catalog rows at once, and PostgreSQL
            # fails one of them ("tuple concurrently updated").
            await connection.execute(select(func.pg_advisory_xact_lock(PREPARING_LOCK)))
        await connection.run_sync(Base.metadata.create_all)
        if connection.dialect.name == "postgresql":
            await apply_policies(connection, tenant_policies() + user_policies())
            app_role = make_url(app_url).username
            if with_grants and app_role:
                # Tenants' rows are the app's to change; global tables (tenants, users)
                # are the operators', so a tenant cannot, say, lift its own suspension.
                writable = tenant_scoped_tables()
                read_only = sorted(set(Base.metadata.tables) - set(writable))
                await grant_to_app_role(
                    connection, app_role, writable=writable, read_only=read_only
                )
            await install_login_lookup(connection, app_role if with_grants else None)


async def warn_if_row_level_security_is_off(database: Database) -> None:
    """Say so at startup when PostgreSQL's policies would not bind the app's role."""
    async with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql" and not await row_security_binds(connection):
            logger.warning(
                "the database role is a superuser or has BYPASSRLS: row-level security (wall 2) "
                "does not apply; set SHELFWISE_DATABASE_URL to a role that owns nothing"
            )


def create_app(
    settings: Settings | None = None,
    *,
    generate_request_id: Callable[[], str] = new_request_id,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """Build a new, independent ShelfWise application.

    A factory (rather than a module-level ``app``) lets each test and each process build its own
    app with its own settings, with no state shared between them. ``generate_request_id`` makes
    the ids of requests that arrive without one; tests pass a deterministic one. The app's spans
    go to ``tracer_provider`` (tests pass one that keeps them in memory); the app shuts it down
    when it stops.
    """
    settings = settings or load_settings()
    configure_logging(settings.log)
    accept_trace_context_only()
    app = FastAPI(
        title=settings.app_name,
        lifespan=lifespan,
        # Every body is checked against the type its route reads, before it is parsed.
        dependencies=[Depends(require_declared_media_type)],
        # "/books/" is not "/books": a 404 problem, not a redirect built from the Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.tracer_provider = tracer_provider or create_tracer_provider()
    # Without a configured key this process draws its own (see AuthSettings).
    secret_key = settings.auth.secret_key or SecretStr(secrets.token_urlsafe(32))
    app.state.token_signer = TokenSigner(
        secret_key.get_secret_value(), timedelta(minutes=settings.auth.token_minutes)
    )
    app.add_api_route(
        "/health",
        health,
        methods=["GET"],
        tags=["platform"],
        responses=problem_responses(takes_input=False),
    )
    app.add_api_route(
        "/health/ready",
        readiness,
        methods=["GET"],
        tags=["platform"],
        # Only the database can make readiness fail: it is never shed nor given a deadline.
        responses=problem_responses(DatabaseUnavailableError, CircuitOpenError, takes_input=False),
    )
    app.include_router(
        create_identity_router(),
        responses=problem_responses(*UNAVAILABLE_ERRORS, takes_input=False),
    )
    # Every feature route acts for the caller's tenant, so every one needs a verified caller
    # (and may be refused for its tenant's limits: TenantLimitsMiddleware).
    for router in (create_catalog_router(), create_inventory_router(), create_orders_router()):
        app.include_router(
            router,
            dependencies=[Depends(authenticate)],
            responses=problem_responses(
                TokenRejectedError,
                TenantSuspendedError,
                RateLimitedError,
                TooManyConcurrentRequestsError,
                *UNAVAILABLE_ERRORS,
                takes_input=False,
            ),
        )
    install_problem_handlers(app)
    metrics = install_metrics(app)
    metrics.registry.register(LimitsCollector(app))
    app.add_middleware(HeadAsGetMiddleware)
    resilience = settings.resilience
    app.add_middleware(
        AdmissionControl,
        max_in_flight=resilience.max_in_flight
        or settings.database.pool_size + settings.database.max_overflow,
        max_queued=resilience.max_queued,
        queue_timeout=resilience.queue_timeout_seconds,
        request_timeout=resilience.request_timeout_seconds,
        # Probes and scrapes must get through an overload: they are how it is seen.
        exempt=PROBE_PATHS,
    )
    # Outside admission control: a tenant over its limits is refused before it can queue.
    app.add_middleware(TenantLimitsMiddleware, api=app, exempt=PROBE_PATHS)
    app.add_middleware(RequestTelemetry, metrics=metrics, unlogged=PROBE_PATHS)
    # Added last, so it is the outermost middleware: every response, a 500 included, has the id.
    app.add_middleware(RequestIdMiddleware, generate=generate_request_id)
    # Its middleware goes outside every other, whenever this is called: the request's span
    # is open while they all run. It must be called before the app serves a request.
    trace_requests(app, app.state.tracer_provider, untraced=PROBE_PATHS)
    return app
