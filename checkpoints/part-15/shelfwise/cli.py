"""The operator's command line: ``python -m shelfwise <command>`` (``--help`` lists them).

Commands connect as the tables' owner (``SHELFWISE_DATABASE_ADMIN_URL``) when one is
configured. Those about one tenant (``--tenant SLUG``) run inside that tenant's context, with
the ORM filter on; the rest run inside a logged system context. Bad input gets one line saying
why, and a non-zero exit status; secrets and passwords are read from the environment or a
prompt, never from the command line, where the shell history and the process list keep them.
"""

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import sys
from argparse import ArgumentParser
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import NoReturn
from uuid import UUID

from pydantic import JsonValue, SecretStr
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.identity.dependencies import ACCOUNT
from shelfwise.identity.models import EMAIL_LENGTH
from shelfwise.identity.onboarding import (
    TenantExistsError,
    UnknownTenantError,
    open_tenant,
    set_tenant_status,
)
from shelfwise.identity.router import PASSWORD_LENGTH
from shelfwise.main import prepare_database
from shelfwise.platform.cache import opened_cache
from shelfwise.platform.db import Database, as_unavailable
from shelfwise.platform.errors import DomainError
from shelfwise.platform.jobs import DeadLetter, Jobs, create_jobs
from shelfwise.platform.settings import Settings, SettingsError, load_settings
from shelfwise.tenancy.cache import TenantCache
from shelfwise.tenancy.config import TenantConfig, describe
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.flags import FeatureFlags, save_flag, set_denial
from shelfwise.tenancy.jobs import TENANT_ID
from shelfwise.tenancy.models import (
    DESCRIPTION_LENGTH,
    SETTING_KEY_LENGTH,
    TENANT_NAME_LENGTH,
    FeatureFlag,
    Plan,
    Tenant,
    TenantStatus,
)
from shelfwise.tenancy.orm_filter import install_orm_filter
from shelfwise.tenancy.secrets import SecretBox, TenantSecrets, new_key

PASSWORD_VARIABLE = "SHELFWISE_ADMIN_PASSWORD"
SECRET_VALUE_VARIABLE = "SHELFWISE_SECRET_VALUE"
MAX_SECRET_LENGTH = 4096
TENANT_LIFECYCLE = {"create-tenant", "suspend-tenant", "reactivate-tenant", "create-demo"}
GLOBAL_COMMANDS = {"flag-set", "secrets-rotate"}
DEAD_LETTER_COMMANDS = {"jobs-dead-list", "jobs-dead-show", "jobs-dead-replay", "jobs-dead-purge"}
MAX_LISTED = 1000
MIN_PASSWORD_LENGTH = 8
# The demo tenants `make serve` creates, to try the API (and its isolation) on a laptop. Known
# passwords: never run create-demo against a deployment.
DEMO_TENANTS = (
    ("demo", "Demo Books", "demo@example.com"),
    ("rival", "Rival Books", "rival@example.com"),
)
DEMO_PASSWORD = "demo-password"

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_KEY = re.compile(rf"^[a-z0-9_.-]{{1,{SETTING_KEY_LENGTH}}}$")
_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
# A Redis stream entry id: milliseconds, a dash, a sequence number.
_LETTER_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


class UsageError(Exception):
    """Input the command refuses; its message is the one line the operator sees."""


class IncompleteError(Exception):
    """The command's change is made, but not every process could be told about it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the reason is what the operator needs.
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise argparse.ArgumentTypeError(
            "a slug is 1-63 lowercase letters, digits and inner hyphens"
        )
    return value


def _name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > TENANT_NAME_LENGTH or "\x00" in value:
        raise argparse.ArgumentTypeError(f"a name is 1-{TENANT_NAME_LENGTH} characters, no NUL")
    return value


def _email(value: str) -> str:
    if len(value) > EMAIL_LENGTH or not _EMAIL.match(value):
        raise argparse.ArgumentTypeError(
            f"not an email address of at most {EMAIL_LENGTH} characters"
        )
    return value


def _key(value: str) -> str:
    if not _KEY.match(value):
        raise argparse.ArgumentTypeError(
            f"a key or name is 1-{SETTING_KEY_LENGTH} lowercase letters, digits, '.', '_' or '-'"
        )
    return value


def _json(value: str) -> JsonValue:
    try:
        parsed: JsonValue = json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg})") from None
    except RecursionError:
        raise argparse.ArgumentTypeError("JSON nested too deeply") from None
    return parsed


def _letter_id(value: str) -> str:
    if not _LETTER_ID.match(value):
        raise argparse.ArgumentTypeError("a dead letter's id looks like 1700000000000-0")
    return value


def _limit(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= MAX_LISTED:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_LISTED}")
    return int(value)


def _percent(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 100:
        raise argparse.ArgumentTypeError("a whole percentage from 0 to 100")
    return int(value)


def _reason(value: str) -> str:
    value = value.strip()
    if not value or len(value) > DESCRIPTION_LENGTH or any(ord(c) < 32 for c in value):
        raise argparse.ArgumentTypeError(
            f"1-{DESCRIPTION_LENGTH} characters, no control characters"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The commands and their arguments."""
    parser = _Parser(prog="python -m shelfwise", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, help: str, *, tenant: bool = False, description: str | None = None
    ) -> ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description or help)
        if tenant:
            sub.add_argument("--tenant", type=_slug, required=True, help="the tenant's slug")
        return sub

    create = command(
        "create-tenant",
        "open a tenant with its first user",
        description=f"The password is read from ${PASSWORD_VARIABLE}, or asked for.",
    )
    create.add_argument("--slug", type=_slug, required=True)
    create.add_argument("--name", type=_name, required=True)
    create.add_argument("--admin-email", type=_email, required=True)
    create.add_argument("--plan", type=Plan, choices=list(Plan), default=Plan.PRO)
    for verb in ("suspend", "reactivate"):
        command(f"{verb}-tenant", f"{verb} a tenant by its slug").add_argument("slug", type=_slug)
    command("create-demo", "the demo tenants for trying the API (not for production)")

    command("config-show", "a tenant's settings, and where each value comes from", tenant=True)
    config_set = command("config-set", "override a setting for a tenant", tenant=True)
    config_set.add_argument("key", type=_key)
    config_set.add_argument("value", type=_json, help="the value, as JSON")
    command("config-unset", "remove a tenant's override", tenant=True).add_argument(
        "key", type=_key
    )

    command("flags-show", "every flag, and whether a tenant gets it and why", tenant=True)
    flag_set = command("flag-set", "create or change a feature flag")
    flag_set.add_argument("name", type=_key)
    flag_set.add_argument("--rollout", type=_percent, help="percent of tenants, 0-100")
    switch = flag_set.add_mutually_exclusive_group()
    switch.add_argument("--kill", action="store_const", const=True, dest="killed")
    switch.add_argument("--revive", action="store_const", const=False, dest="killed")
    flag_set.add_argument("--description", type=_reason)
    deny = command("flag-deny", "keep a flag from a tenant, whatever the rollout", tenant=True)
    deny.add_argument("name", type=_key)
    deny.add_argument("--reason", type=_reason, required=True)
    command("flag-allow", "lift a tenant's denial of a flag", tenant=True).add_argument(
        "name", type=_key
    )

    secret_set = command(
        "secret-set",
        "store a tenant's secret, encrypted",
        tenant=True,
        description=f"The value is read from ${SECRET_VALUE_VARIABLE}, or asked for.",
    )
    secret_set.add_argument("name", type=_key)
    command("secrets-list", "the names of a tenant's secrets", tenant=True)
    command("secrets-rotate", "re-encrypt every secret with the newest key")
    command("secrets-new-key", "print a new key for SHELFWISE_SECRETS_KEYS")

    listing = command("jobs-dead-list", "the newest dead letters: jobs that failed for good")
    listing.add_argument("--limit", type=_limit, default=20)
    for name, help in (
        ("jobs-dead-show", "one dead letter, with the message it holds"),
        ("jobs-dead-replay", "send a dead letter's job again, as a first attempt"),
    ):
        command(name, help).add_argument("id", type=_letter_id)
    command("jobs-dead-purge", "delete every dead letter")
    return parser


def _from_environment_or_prompt(variable: str, prompt: str) -> str:
    """The value of ``variable``, else asked for without echo. Never an argument: arguments
    show in `ps` and in the shell's history."""
    value = os.environ.get(variable)
    if value is None:
        if not sys.stdin.isatty():
            raise UsageError(f"set {variable}, or run in a terminal to be asked")
        value = getpass.getpass(prompt)
    return value


def _password() -> str:
    password = _from_environment_or_prompt(PASSWORD_VARIABLE, "password for the first user: ")
    if not MIN_PASSWORD_LENGTH <= len(password) <= PASSWORD_LENGTH:
        raise UsageError(f"a password is {MIN_PASSWORD_LENGTH}-{PASSWORD_LENGTH} characters long")
    return password


async def run(arguments: argparse.Namespace, settings: Settings) -> str:
    """Carry out one parsed command; returns what to print."""
    if arguments.command == "secrets-new-key":
        return new_key()
    if arguments.command in DEAD_LETTER_COMMANDS:
        return await _dead_letters(arguments, settings)
    await prepare_database(settings)
    admin_url = settings.database.admin_url or settings.database.url
    database = Database.connect(admin_url.get_secret_value())
    # The operator's sessions get wall 1 too: a command about one tenant sees only its rows.
    install_orm_filter(database.session_factory)
    try:
        if arguments.command in TENANT_LIFECYCLE:
            async with database.session_factory() as session:
                return await _manage_tenant(session, arguments, settings)
        if arguments.command in GLOBAL_COMMANDS:
            return await _for_every_tenant(arguments, settings, database)
        async with database.session_factory() as session:
            tenant_id = await _tenant_id(session, arguments.tenant)
        with tenant_context(tenant_id):
            return await _for_tenant(arguments, settings, database)
    finally:
        await database.dispose()


async def _dead_letters(arguments: argparse.Namespace, settings: Settings) -> str:
    if settings.jobs.redis_url is None:
        raise UsageError(
            "dead letters are kept on the jobs' Redis: set SHELFWISE_JOBS_REDIS_URL "
            "(without it they live in the API's own process and go with it)"
        )
    jobs = create_jobs(settings.jobs, {})
    try:
        return await _handle_dead_letters(arguments, jobs)
    except RedisError as error:
        raise UsageError(f"the jobs' Redis did not answer ({type(error).__name__})") from None
    finally:
        await jobs.stop()


async def _handle_dead_letters(arguments: argparse.Namespace, jobs: Jobs) -> str:
    command = arguments.command
    if command == "jobs-dead-list":
        letters = await jobs.dead_letters.recent(arguments.limit)
        return "\n".join(map(_summary, letters)) or "no dead letters"
    if command == "jobs-dead-purge":
        return f"deleted {await jobs.dead_letters.purge()} dead letter(s)"
    if command == "jobs-dead-show":
        letter = await jobs.dead_letters.find(arguments.id)
        if letter is None:
            raise UsageError(f"there is no dead letter {arguments.id}")
        return json.dumps(asdict(letter), indent=2)
    letter = await jobs.replay(arguments.id)
    if letter is None:
        raise UsageError(f"there is no dead letter {arguments.id} (or it was replayed already)")
    return f"sent {letter.task_name} ({letter.task_id}) again"


def _summary(letter: DeadLetter) -> str:
    failed_at = datetime.fromtimestamp(letter.failed_at, UTC).isoformat(timespec="seconds")
    tenant = letter.labels.get(TENANT_ID, "-")
    return (
        f"{letter.id}  {letter.task_name}  tenant {tenant}  {letter.attempts} attempt(s)  "
        f"{failed_at}  {' '.join(letter.error.split())}"
    )


async def _manage_tenant(
    session: AsyncSession, arguments: argparse.Namespace, settings: Settings
) -> str:
    if arguments.command == "create-tenant":
        tenant = await open_tenant(
            session,
            slug=arguments.slug,
            name=arguments.name,
            plan=arguments.plan,
            email=arguments.admin_email,
            password=_password(),
        )
        return f"created tenant {tenant.slug} (id {tenant.id}) and its first user"
    if arguments.command == "create-demo":
        return await _create_demo(session)
    suspend = arguments.command == "suspend-tenant"
    status = TenantStatus.SUSPENDED if suspend else TenantStatus.ACTIVE
    tenant = await set_tenant_status(session, arguments.slug, status)
    done = f"tenant {tenant.slug} is {tenant.status.value}"
    # Running processes cache that its users may act: they must ask the database again.
    cache_settings = settings.cache
    async with opened_cache(cache_settings) as cache:
        tenant_cache = TenantCache.for_settings(cache, settings)
        with tenant_context(tenant.id):
            told = await tenant_cache.changed(ACCOUNT)
            told = await tenant_cache.settled() and told
    if cache_settings.redis_url is not None and not told:
        raise IncompleteError(
            f"{done}, but the cache's Redis did not answer: running processes may not see it "
            f"for {cache_settings.ttl_seconds} s; run the command again once Redis answers"
        )
    return done


async def _tenant_id(session: AsyncSession, slug: str) -> UUID:
    """The id of the tenant named on the command line."""
    # Tenants are a global table: the ORM filter lets this lookup through without a bypass.
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise UnknownTenantError(f"There is no tenant {slug!r}.")
    return tenant_id


async def _for_every_tenant(
    arguments: argparse.Namespace, settings: Settings, database: Database
) -> str:
    async with database.session_factory() as session:
        if arguments.command == "secrets-rotate":
            secrets = TenantSecrets(SecretBox(settings.secrets.keys))
            return f"re-encrypted {await secrets.rotate_all(session)} secret(s) with the newest key"
        # flag-set: flags belong to no tenant.
        flag = await save_flag(
            session,
            arguments.name,
            rollout_percent=arguments.rollout,
            killed=arguments.killed,
            description=arguments.description,
        )
    state = "killed" if flag.killed else f"rolled out to {flag.rollout_percent} %"
    return f"flag {flag.name} is {state}"


async def _for_tenant(arguments: argparse.Namespace, settings: Settings, database: Database) -> str:
    # ttl=0: an operator command reads the tables as they are now.
    config = TenantConfig(settings.tenant_defaults, ttl_seconds=0)
    box = SecretBox(settings.secrets.keys)
    secrets = TenantSecrets(box)
    async with database.session_factory() as session:
        match arguments.command:
            case "config-show":
                return "\n".join(describe(each) for each in await config.explain(session))
            case "config-set":
                return describe(await config.set(session, arguments.key, arguments.value))
            case "config-unset":
                return describe(await config.unset(session, arguments.key))
            case "flags-show":
                return await _flags_shown(session)
            case "flag-deny" | "flag-allow":
                reason = arguments.reason if arguments.command == "flag-deny" else None
                await set_denial(session, arguments.name, reason)
                verb = "denied to" if reason else "no longer denied to"
                return f"flag {arguments.name} is {verb} tenant {arguments.tenant}"
            case "secret-set":
                box.ensure_available()
                await secrets.set(session, arguments.name, _secret_value())
                return f"secret {arguments.name} stored for tenant {arguments.tenant}, encrypted"
            case _:
                return "\n".join(await secrets.names(session)) or "no secrets"


async def _flags_shown(session: AsyncSession) -> str:
    flags = FeatureFlags(ttl_seconds=0)
    names = list(await session.scalars(select(FeatureFlag.name).order_by(FeatureFlag.name)))
    lines = []
    for name in names:
        decision = await flags.decide(session, name)
        lines.append(f"{name}: {'on' if decision.enabled else 'off'} ({decision.reason})")
    return "\n".join(lines) or "no flags"


def _secret_value() -> SecretStr:
    value = _from_environment_or_prompt(SECRET_VALUE_VARIABLE, "secret value: ")
    if not 1 <= len(value) <= MAX_SECRET_LENGTH or "\x00" in value:
        raise UsageError(f"a secret is 1-{MAX_SECRET_LENGTH} characters, no NUL")
    return SecretStr(value)


async def _create_demo(session: AsyncSession) -> str:
    for slug, name, email in DEMO_TENANTS:
        # A tenant made by an earlier run is left as it is: the command is safe to repeat.
        with contextlib.suppress(TenantExistsError):
            await open_tenant(
                session, slug=slug, name=name, plan=Plan.FREE, email=email, password=DEMO_PASSWORD
            )
    users = " and ".join(email for _, _, email in DEMO_TENANTS)
    return f"demo tenants ready: log in as {users}, password {DEMO_PASSWORD!r}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, print one line; the exit status says how it went."""
    parser = build_parser()
    arguments = parser.parse_args(argv)  # exits with status 2 and one line on bad usage
    try:
        print(asyncio.run(run(arguments, load_settings())))
    except (UsageError, IncompleteError, DomainError, SettingsError) as error:
        print(f"{parser.prog} {arguments.command}: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        # The database down, or a deadlock with live requests: one line, as the API's problem.
        unavailable = as_unavailable(error, retry_after_seconds=1)
        if unavailable is None:
            raise
        print(
            f"{parser.prog} {arguments.command}: {unavailable.code}: {unavailable}", file=sys.stderr
        )
        return 1
    return 0
