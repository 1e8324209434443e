"""Application settings, read from the environment, grouped by what they configure.

Each group reads its own prefix, so a variable's name says where it belongs:
``SHELFWISE_DATABASE_URL``, ``SHELFWISE_AUTH_SECRET_KEY``, ``SHELFWISE_SECRETS_KEYS``. Values that
grant access are ``SecretStr``: printing, logging or ``repr``-ing the settings shows ``**********``.
``load_settings`` turns a validation failure into one line per variable, naming it.
"""

import re
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import pydantic_settings
from pydantic import Field, JsonValue, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "SHELFWISE_"


class DatabaseSettings(BaseSettings):
    """Where the data lives. URLs carry passwords, so they are secrets too."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}DATABASE_")

    url: SecretStr = SecretStr("sqlite+aiosqlite:///./shelfwise.db")
    # The tables' owner, on PostgreSQL: creates the schema and its row-level security
    # policies, while the app itself connects as url's role, which owns nothing.
    admin_url: SecretStr | None = None
    # A read replica (a hot standby of url's server). Unset, reads go to url's server.
    read_url: SecretStr | None = None

    # The pool, on PostgreSQL. Connections kept open, and how many more a burst may open:
    # across every process their sum must stay under the server's max_connections.
    pool_size: int = Field(default=20, ge=1, le=1000)
    max_overflow: int = Field(default=30, ge=0, le=1000)
    # How long a request waits for a free connection before it is answered 503. SQLAlchemy's
    # 30 s outlasts every caller's patience: by then the client has given up and retried.
    pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Connections older than this are replaced before a firewall or proxy drops them silently.
    pool_recycle_seconds: int = Field(default=1800, ge=10, le=86_400)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # The server cancels a statement that runs longer. The client waits one second more for
    # any answer, so a server that stopped answering at all is given up on too.
    statement_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    # Names this service's connections in pg_stat_activity and the server's logs.
    # PostgreSQL keeps 63 characters; the replica's connections get "-read" appended.
    application_name: str = Field(default="shelfwise", pattern=r"^[A-Za-z0-9._-]{1,58}$")


class AuthSettings(BaseSettings):
    """Access tokens."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}AUTH_")

    # Signs access tokens. Unset, each process draws its own: tokens then die with the
    # process and are refused by any other, which is safe but fits one process only.
    secret_key: SecretStr | None = Field(default=None, min_length=32)
    token_minutes: int = Field(default=60, ge=1, le=24 * 60)


class SecretsSettings(BaseSettings):
    """The keys that encrypt tenants' secrets at rest: Fernet keys, newest first.

    A JSON list: ``SHELFWISE_SECRETS_KEYS='["new-key", "old-key"]'``. New secrets are encrypted
    with the first; every key still decrypts, so a key is retired only after
    ``python -m shelfwise secrets-rotate`` has re-encrypted what it protected.
    """

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}SECRETS_")

    keys: list[SecretStr] = Field(default_factory=list, max_length=10)


class ResilienceSettings(BaseSettings):
    """How the service behaves when it is overloaded or the database fails."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}RESILIENCE_")

    # Requests one process runs at once; unset, as many as the pool has connections, so an
    # admitted request does not wait for one.
    max_in_flight: int | None = Field(default=None, ge=1, le=10_000)
    # Requests that may wait for a slot, and for how long, before being refused with 503.
    max_queued: int = Field(default=100, ge=0, le=100_000)
    queue_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    # The longest an admitted request may take, every wait included, before it is answered 503.
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Consecutive database outages that open the circuit, and how long it stays open.
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_reset_seconds: float = Field(default=5.0, gt=0, le=600)


class LoggingSettings(BaseSettings):
    """What the process logs, and how. Traces follow OpenTelemetry's own ``OTEL_*`` variables
    (see ``shelfwise.platform.tracing``)."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}LOG_")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # One JSON object per line for log collectors; "console" for a person at a terminal.
    format: Literal["json", "console"] = "json"


class CacheSettings(BaseSettings):
    """The cache in front of the database (see shelfwise.platform.cache)."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}CACHE_")

    enabled: bool = True
    # A Redis every process shares: redis://host:6379/0, rediss:// for TLS, unix:///path.
    # Unset, each process caches alone, in memory: right for one process (the quick start).
    redis_url: SecretStr | None = None
    # How long Redis keeps a value; a write makes it unreachable long before.
    ttl_seconds: int = Field(default=300, ge=1, le=86_400)
    # How long a process keeps its own copy. This also bounds how stale a process can be
    # when it misses an invalidation, or when there is no Redis to announce one.
    l1_ttl_seconds: float = Field(default=5.0, gt=0, le=300)
    # The most a process keeps, in bytes of cached values (64 MiB).
    l1_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=2**40)
    # Every Redis call gives up after this long and the value is read from the database.
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    # Opening a connection may take longer: on a busy process the event loop itself delays
    # it, and a connection that times out keeps the cache off for another pause.
    redis_connect_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    # After a failure, how long the cache stops calling Redis (reads go to the database).
    redis_retry_seconds: float = Field(default=5.0, gt=0, le=600)
    # With a read replica: how far behind the primary it may fall. A read between a write
    # and the replica catching up caches the old rows, so writes invalidate again this late.
    replica_lag_seconds: float = Field(default=1.0, ge=0, le=60)
    # Where invalidations are announced. Pub/sub ignores the database number in the URL:
    # two deployments sharing one Redis server need different channels.
    channel: str = Field(default="shelfwise:invalidate", pattern=r"^[A-Za-z0-9:._-]{1,100}$")


REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


class JobSettings(BaseSettings):
    """Background jobs (see shelfwise.platform.jobs)."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}JOBS_")

    # A Redis stream the API sends jobs to and workers read: redis://host:6379/0. Unset, jobs
    # run in the API's own process (the quick start): lost if it stops, retried in memory.
    redis_url: SecretStr | None = None
    stream: str = Field(default="shelfwise:jobs", pattern=r"^[A-Za-z0-9:._-]{1,100}$")

    @field_validator("redis_url")
    @classmethod
    def _is_a_redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and urlsplit(url.get_secret_value()).scheme not in REDIS_SCHEMES:
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
        return url

    # Runs of a job before it becomes a dead letter, the first included.
    max_attempts: int = Field(default=5, ge=1, le=20)
    # The delay before a retry is drawn up to base * 2^(attempt-1), at most the cap.
    retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    retry_cap_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # A message a worker took and did not acknowledge for this long is given to another
    # worker (the first may have died). Longer than any job may run, or a job runs twice.
    redelivery_seconds: float = Field(default=600.0, ge=1, le=86_400)
    # How many dead letters are kept, the newest.
    dead_letters: int = Field(default=10_000, ge=10, le=1_000_000)


class MailSettings(BaseSettings):
    """Outgoing email (see shelfwise.platform.mail)."""

    model_config = SettingsConfigDict(env_prefix=f"{PREFIX}MAIL_")

    # The SMTP server: a relay in production, a local sink in development. Unset, messages
    # are written to the log instead (the quick start).
    smtp_host: str | None = Field(default=None, min_length=1, max_length=253)
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    sender: str = Field(default="orders@shelfwise.invalid", pattern=r"^[^@\s]{1,64}@[^@\s]{1,253}$")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class Settings(BaseSettings):
    """Configuration for one ShelfWise process."""

    model_config = SettingsConfigDict(env_prefix=PREFIX)

    app_name: str = "ShelfWise"
    environment: Literal["development", "production"] = "development"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    log: LoggingSettings = Field(default_factory=LoggingSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    # Values for every tenant without an override of its own, by setting key, as JSON:
    # SHELFWISE_TENANT_DEFAULTS='{"orders.bulk_discount_tiers": [[20, "7.5"]]}'.
    tenant_defaults: dict[str, JsonValue] = Field(default_factory=dict)
    # How long a process trusts what it read of a tenant's settings and flags.
    tenant_config_ttl_seconds: float = Field(default=30.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _production_needs_its_secrets(self) -> Self:
        if self.environment == "production":
            missing = [
                f"{PREFIX}{name}"
                for name, value in (
                    ("AUTH_SECRET_KEY", self.auth.secret_key),
                    ("SECRETS_KEYS", self.secrets.keys),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    "\n".join(f"{name}: must be set in production" for name in missing)
                )
        return self


class SettingsError(Exception):
    """The environment holds settings that do not validate; one line per variable."""


# The groups of settings, each read from variables with its own prefix.
SETTINGS_GROUPS: tuple[type[BaseSettings], ...] = (
    DatabaseSettings,
    AuthSettings,
    SecretsSettings,
    ResilienceSettings,
    LoggingSettings,
    CacheSettings,
    JobSettings,
    MailSettings,
)


def load_settings(**overrides: Any) -> Settings:
    """``Settings()`` from the environment, or ``SettingsError`` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError("\n".join(_named(error))) from None
    except pydantic_settings.SettingsError as error:
        # A list or dict variable that is not JSON fails before validation, naming the field.
        field = re.search(r'field "(\w+)"', str(error))
        groups: list[type[BaseSettings]] = [*SETTINGS_GROUPS, Settings]
        variables = [
            _variable(group, field.group(1))
            for group in groups
            if field and field.group(1) in group.model_fields
        ]
        raise SettingsError(
            f"{variables[0] if variables else 'settings'}: not valid JSON"
        ) from None


def _named(error: ValidationError) -> list[str]:
    group = {group.__name__: group for group in SETTINGS_GROUPS}.get(error.title, Settings)
    lines = []
    for each in error.errors():
        # Only pydantic's message: the input, which may be a secret, is never echoed back.
        message = each["msg"].removeprefix("Value error, ")
        if each["loc"]:
            lines.append(f"{_variable(group, str(each['loc'][0]))}: {message}")
        else:  # a rule across variables, which names them itself
            lines.extend(message.splitlines())
    return lines


def _variable(group: type[BaseSettings], field: str) -> str:
    return f"{group.model_config.get('env_prefix', '')}{field}".upper()
