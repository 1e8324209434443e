"""The operator's command line: ``python -m shelfwise <command>``.

Commands act across tenants, so they run inside a logged system context and connect as the
tables' owner (``SHELFWISE_DATABASE_ADMIN_URL``) when one is configured. Bad input gets one
line saying why, and a non-zero exit status.
"""

import argparse
import asyncio
import contextlib
import getpass
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from shelfwise.identity.models import EMAIL_LENGTH
from shelfwise.identity.onboarding import TenantExistsError, open_tenant, set_tenant_status
from shelfwise.identity.router import PASSWORD_LENGTH
from shelfwise.main import prepare_database
from shelfwise.platform.db import Database
from shelfwise.platform.errors import DomainError
from shelfwise.platform.settings import Settings
from shelfwise.tenancy.models import TENANT_NAME_LENGTH, Plan, TenantStatus

PASSWORD_VARIABLE = "SHELFWISE_ADMIN_PASSWORD"
MIN_PASSWORD_LENGTH = 8
# The demo tenants `make serve` creates, to try the API (and its isolation) on a laptop. Known
# passwords: never run create-demo against a deployment.
DEMO_TENANTS = (
    ("demo", "Demo Books", "demo@example.com"),
    ("rival", "Rival Books", "rival@example.com"),
)
DEMO_PASSWORD = "demo-password"

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")


class UsageError(Exception):
    """Input the command refuses; its message is the one line the operator sees."""


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


def build_parser() -> argparse.ArgumentParser:
    """The commands and their arguments."""
    parser = _Parser(prog="python -m shelfwise", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-tenant",
        help="open a tenant with its first user",
        description=f"The password is read from ${PASSWORD_VARIABLE}, or asked for.",
    )
    create.add_argument("--slug", type=_slug, required=True)
    create.add_argument("--name", type=_name, required=True)
    create.add_argument("--admin-email", type=_email, required=True)
    create.add_argument("--plan", type=Plan, choices=list(Plan), default=Plan.PRO)
    for verb in ("suspend", "reactivate"):
        command = commands.add_parser(f"{verb}-tenant", help=f"{verb} a tenant by its slug")
        command.add_argument("slug", type=_slug)
    commands.add_parser(
        "create-demo", help="the demo tenant for trying the API (not for production)"
    )
    return parser


def _password() -> str:
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError(f"set {PASSWORD_VARIABLE}, or run in a terminal to be asked")
        password = getpass.getpass("password for the first user: ")
    if not MIN_PASSWORD_LENGTH <= len(password) <= PASSWORD_LENGTH:
        raise UsageError(f"a password is {MIN_PASSWORD_LENGTH}-{PASSWORD_LENGTH} characters long")
    return password


async def run(arguments: argparse.Namespace, settings: Settings) -> str:
    """Carry out one parsed command; returns the line to print."""
    await prepare_database(settings)
    database = Database.connect(settings.database_admin_url or settings.database_url)
    try:
        async with database.session_factory() as session:
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
            status = (
                TenantStatus.SUSPENDED
                if arguments.command == "suspend-tenant"
                else TenantStatus.ACTIVE
            )
            tenant = await set_tenant_status(session, arguments.slug, status)
            return f"tenant {tenant.slug} is {tenant.status.value}"
    finally:
        await database.dispose()


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
        print(asyncio.run(run(arguments, Settings())))
    except (UsageError, DomainError) as error:
        print(f"{parser.prog} {arguments.command}: {error}", file=sys.stderr)
        return 1
    return 0
