"""The operator's command line: tenants opened, suspended and reactivated; bad input refused
with one line and a non-zero exit status."""

import asyncio
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shelfwise.cli import DEMO_PASSWORD, PASSWORD_VARIABLE, SECRET_VALUE_VARIABLE, main
from shelfwise.identity.models import User
from shelfwise.platform.db import Database
from shelfwise.tenancy.context import system_context
from shelfwise.tenancy.models import Tenant, TenantStatus
from shelfwise.tenancy.secrets import new_key


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI reads its database from the environment, as in a deployment (SQLite here: the
    commands' logic is the same on PostgreSQL)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shelfwise.db'}"
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", url)
    monkeypatch.setenv(PASSWORD_VARIABLE, "a long enough password")
    return url


async def stored_tenants(database_url: str) -> dict[str, tuple[str, int]]:
    database = Database.connect(database_url)
    try:
        async with database.session_factory() as session:
            with system_context("tests: read what the CLI stored"):
                users = func.count(User.id)
                rows = await session.execute(
                    select(Tenant.slug, Tenant.status, users).outerjoin(User).group_by(Tenant.id)
                )
                return {slug: (status.value, count) for slug, status, count in rows}
    finally:
        await database.dispose()


def run(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse exits on bad usage
        return int(exit_.code or 0)


def test_an_operator_opens_suspends_and_reactivates_a_tenant(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    opened = (
        "create-tenant",
        "--slug",
        "acme",
        "--name",
        "Acme Books",
        "--admin-email",
        "a@acme.test",
    )
    assert run(*opened) == 0
    assert re.fullmatch(
        r"created tenant acme \(id [0-9a-f-]{36}\) and its first user\n", capsys.readouterr().out
    )
    assert run("suspend-tenant", "acme") == 0
    assert run("reactivate-tenant", "acme") == 0
    assert capsys.readouterr().out.splitlines() == [
        "tenant acme is suspended",
        "tenant acme is active",
    ]


def test_the_tenants_land_in_the_database(database_url: str) -> None:
    assert (
        run("create-tenant", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.test")
        == 0
    )
    assert run("suspend-tenant", "acme") == 0

    assert asyncio.run(stored_tenants(database_url)) == {"acme": (TenantStatus.SUSPENDED.value, 1)}


def test_the_demo_command_can_run_twice(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("create-demo") == 0
    assert run("create-demo") == 0

    assert DEMO_PASSWORD in capsys.readouterr().out
    stored = asyncio.run(stored_tenants(database_url))
    assert stored == {"demo": ("active", 1), "rival": ("active", 1)}


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (
            ("create-tenant", "--slug", "Not A Slug", "--name", "x", "--admin-email", "a@b.test"),
            "slug",
        ),
        (
            ("create-tenant", "--slug", "ok", "--name", "x" * 201, "--admin-email", "a@b.test"),
            "name",
        ),
        (("create-tenant", "--slug", "ok", "--name", "x", "--admin-email", "no-at-sign"), "email"),
        (("create-tenant", "--slug", "ok", "--name", "x\x00", "--admin-email", "a@b.test"), "NUL"),
        (("suspend-tenant", "nobody"), "no tenant 'nobody'"),
        (("frobnicate",), "invalid choice"),
    ],
    ids=["bad slug", "long name", "bad email", "NUL", "unknown tenant", "unknown command"],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    database_url: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], reason: str
) -> None:
    assert run(*argv) != 0

    error = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in error if not line.startswith("system context")]) == 1
    assert reason in error[-1]


def test_a_second_tenant_with_the_same_slug_is_refused(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("create-tenant", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.test")
    assert run(*argv) == 0

    assert run(*argv) == 1
    assert "already exists" in capsys.readouterr().err


def test_a_short_password_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "short")

    assert (
        run("create-tenant", "--slug", "acme", "--name", "Acme", "--admin-email", "a@b.test") == 1
    )
    assert "8-1024 characters" in capsys.readouterr().err


@pytest.fixture
def acme(database_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """A tenant "acme" to configure; the output of opening it is discarded."""
    assert (
        run("create-tenant", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.test")
        == 0
    )
    capsys.readouterr()
    return "acme"


def test_an_unreachable_database_gets_one_line_and_exit_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    monkeypatch.setenv("SHELFWISE_DATABASE_URL", "postgresql+asyncpg://app:pw@127.0.0.1:1/shop")
    assert run("config-show", "--tenant", "acme") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m shelfwise config-show: database_unavailable: ")


def test_an_operator_overrides_a_setting_and_sees_where_each_value_comes_from(
    acme: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "orders.bulk_discount_tiers"
    assert run("config-set", "--tenant", acme, key, '[[20, "7.5"]]') == 0
    assert run("config-show", "--tenant", acme) == 0
    assert run("config-unset", "--tenant", acme, key) == 0

    set_line, *shown, unset_line = capsys.readouterr().out.splitlines()
    assert set_line == f'{key} = [[20, "7.5"]]  (tenant)'
    assert set_line in shown
    assert "orders.distributor_webhook_url = null  (default)" in shown
    assert unset_line.endswith("(default)")


def test_a_flag_is_rolled_out_killed_and_denied_per_tenant(
    acme: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("flag-set", "catalog.isbn_search", "--rollout", "100") == 0
    assert run("flags-show", "--tenant", acme) == 0
    assert run("flag-deny", "catalog.isbn_search", "--tenant", acme, "--reason", "no betas") == 0
    assert run("flags-show", "--tenant", acme) == 0
    assert run("flag-allow", "catalog.isbn_search", "--tenant", acme) == 0
    assert run("flag-set", "catalog.isbn_search", "--kill") == 0
    assert run("flags-show", "--tenant", acme) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "flag catalog.isbn_search is rolled out to 100 %"
    assert lines[1].startswith("catalog.isbn_search: on (in the rollout")
    assert lines[3] == "catalog.isbn_search: off (denied for this tenant)"
    assert lines[6] == "catalog.isbn_search: off (killed)"


def test_a_secret_is_set_listed_and_rotated_without_being_printed(
    acme: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key = new_key()
    monkeypatch.setenv("SHELFWISE_SECRETS_KEYS", json.dumps([old_key]))
    monkeypatch.setenv(SECRET_VALUE_VARIABLE, "whsec_never-print-me")
    assert run("secret-set", "--tenant", acme, "webhook_signing_key") == 0
    monkeypatch.setenv("SHELFWISE_SECRETS_KEYS", json.dumps([new_key(), old_key]))
    assert run("secrets-rotate") == 0
    assert run("secrets-list", "--tenant", acme) == 0

    printed = capsys.readouterr()
    assert printed.out.splitlines() == [
        "secret webhook_signing_key stored for tenant acme, encrypted",
        "re-encrypted 1 secret(s) with the newest key",
        "webhook_signing_key",
    ]
    assert "never-print-me" not in printed.out + printed.err


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("config-set", "--tenant", "acme", "orders.bulk_discount_tiers", "[[20,"), "not JSON"),
        (
            ("config-set", "--tenant", "acme", "orders.bulk_discount_tiers", '[[20, "90"]]'),
            "percent",
        ),
        (("config-set", "--tenant", "acme", "orders.nope", "1"), "no setting 'orders.nope'"),
        (("config-show", "--tenant", "nobody"), "no tenant 'nobody'"),
        (("config-set", "--tenant", "acme", "orders.bulk_discount_tiers", "[" * 5000), "deeply"),
        (("flag-set", "Bad Name", "--rollout", "5"), "a key or name"),
        (("flag-deny", "beta", "--tenant", "acme", "--reason", "a\x1b[31mred"), "control"),
        (("flag-set", "beta", "--rollout", "101"), "percentage"),
        (("flag-deny", "nope", "--tenant", "acme", "--reason", "x"), "no flag 'nope'"),
        (("secret-set", "--tenant", "acme", "webhook_signing_key"), "SHELFWISE_SECRETS_KEYS"),
    ],
)
def test_bad_configuration_input_is_one_line_and_a_nonzero_exit(
    acme: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], reason: str
) -> None:
    assert run(*argv) != 0

    error = [line for line in capsys.readouterr().err.splitlines() if "system context" not in line]
    assert len(error) == 1 and reason in error[0]


def test_a_bad_setting_in_the_environment_is_named(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHELFWISE_AUTH_TOKEN_MINUTES", "forever")

    assert run("create-demo") == 1
    assert "SHELFWISE_AUTH_TOKEN_MINUTES: " in capsys.readouterr().err


@pytest.mark.parametrize(
    "defaults",
    ['{"limits.requests_per_minute": 0}', '{"limits.concurrent_requests": "8"}', '{"nope": 1}'],
)
def test_a_bad_tenant_default_in_the_environment_gets_one_line(
    acme: str,
    defaults: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHELFWISE_TENANT_DEFAULTS", defaults)

    assert run("config-show", "--tenant", acme) == 1

    [line] = [line for line in capsys.readouterr().err.splitlines() if "system context" not in line]
    assert line.startswith("python -m shelfwise config-show: SHELFWISE_TENANT_DEFAULTS: ")
