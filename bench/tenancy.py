"""Tenants for parts 9 and later, where the API needs a bearer token.

Written against the interface part 9 announces; to be confirmed when part 9 lands:

- ``python -m shelfwise create-tenant --slug SLUG --name NAME --admin-email EMAIL`` with the
  password in ``SHELFWISE_ADMIN_PASSWORD`` and the database in ``SHELFWISE_DATABASE_URL`` (and
  ``SHELFWISE_DATABASE_ADMIN_URL``, the owner's URL), exiting 0;
- ``POST /auth/token`` with form fields ``username`` (the email) and ``password``, answering
  ``{"access_token": ..., "token_type": "bearer"}``;
- a ``tenants`` table with ``id`` and ``slug`` columns (read for the raw asyncpg order).
"""

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import URL

from bench.workload import Tenant

TOKEN_PATH = "/auth/token"
# A throwaway database's throwaway admins.
PASSWORD = "bench-password-not-a-secret"


def has_tenancy(openapi: dict[str, object]) -> bool:
    """Whether the app serves logins, as it does from part 9 on."""
    paths = openapi.get("paths")
    return isinstance(paths, dict) and TOKEN_PATH in paths


async def create_tenants(
    client: httpx.AsyncClient,
    app_dir: Path,
    environment: dict[str, str],
    admin_url: URL,
    count: int,
) -> list[Tenant]:
    """Create ``count`` tenants with the operator command, log in as each one's admin, and
    look up their ids."""
    tenants = []
    for number in range(1, count + 1):
        slug = f"bench-{number}"
        email = f"admin@{slug}.example"
        # The app's own command, run from its folder so `-m shelfwise` finds that part's package.
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "shelfwise",
                "create-tenant",
                "--slug",
                slug,
                "--name",
                f"Bench tenant {number}",
                "--admin-email",
                email,
            ],
            cwd=app_dir,
            env=os.environ | environment | {"SHELFWISE_ADMIN_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
        )
        if created.returncode != 0:
            raise RuntimeError(f"create-tenant {slug} failed:\n{created.stdout}{created.stderr}")
        response = await client.post(TOKEN_PATH, data={"username": email, "password": PASSWORD})
        if not response.is_success:
            raise RuntimeError(f"logging in as {email} failed: {response.text}")
        token = response.json()["access_token"]
        tenants.append(Tenant(slug=slug, headers={"Authorization": f"Bearer {token}"}))
    connection = await asyncpg.connect(
        admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        ids = dict(await connection.fetch("SELECT slug, id FROM tenants"))
    finally:
        await connection.close()
    for tenant in tenants:
        tenant.database_id = ids[tenant.slug]
    return tenants
