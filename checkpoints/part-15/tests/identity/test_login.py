"""Logging in, and which tokens the API accepts: only its own, unexpired, for an active tenant."""

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from shelfwise.identity.dependencies import ACCOUNT
from shelfwise.identity.tokens import ALGORITHM, ISSUER, Principal, TokenSigner
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.models import TenantStatus
from tests.conftest import TEST_SECRET_KEY
from tests.factories import PASSWORD, Tenants, set_status


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_user_logs_in_and_the_token_acts_for_their_tenant(
    anonymous_client: httpx.AsyncClient, tenants: Tenants
) -> None:
    response = await log_in(anonymous_client, "ALPHA@example.com ", PASSWORD)

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    token = response.json()["access_token"]
    claims = jwt.decode(token, TEST_SECRET_KEY, algorithms=[ALGORITHM], issuer=ISSUER)
    assert (claims["sub"], claims["tid"]) == (str(tenants.a.user_id), str(tenants.a.id))
    created = await anonymous_client.post(
        "/authors", json={"name": "Octavia E. Butler"}, headers=bearer(token)
    )
    assert created.status_code == 201


@pytest.mark.parametrize(
    ("email", "password"),
    [("alpha@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong password", "unknown email"],
)
async def test_wrong_credentials_get_one_undistinguished_401(
    anonymous_client: httpx.AsyncClient, tenants: Tenants, email: str, password: str
) -> None:
    response = await log_in(anonymous_client, email, password)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_credentials"
    assert response.json()["detail"] == "The email or the password is wrong."


async def test_no_token_is_a_401_problem_naming_the_bearer_scheme(
    anonymous_client: httpx.AsyncClient,
) -> None:
    response = await anonymous_client.get("/books")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "invalid_token"


def forged_tokens(tenants: Tenants) -> dict[str, str]:
    a = Principal(tenants.a.user_id, tenants.a.id)
    now = datetime.now(UTC)
    other_key = TokenSigner("another-key-of-at-least-32-bytes!!", timedelta(minutes=5))
    expired = TokenSigner(
        TEST_SECRET_KEY, timedelta(minutes=5), clock=lambda: now - timedelta(hours=1)
    )
    claims = {
        "iss": ISSUER,
        "sub": str(a.user_id),
        "tid": str(a.tenant_id),
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return {
        "signed with another key": other_key.issue(a),
        "expired": expired.issue(a),
        "unsigned (alg none)": jwt.encode(claims, "", algorithm="none"),
        "without a tenant claim": jwt.encode(
            {k: v for k, v in claims.items() if k != "tid"}, TEST_SECRET_KEY, algorithm=ALGORITHM
        ),
        "for a user of another tenant": TokenSigner(TEST_SECRET_KEY, timedelta(minutes=5)).issue(
            Principal(tenants.a.user_id, tenants.b.id)
        ),
        "a user id out of range": jwt.encode(
            claims | {"sub": str(2**40)}, TEST_SECRET_KEY, algorithm=ALGORITHM
        ),
        "a user id of 5,000 digits": jwt.encode(
            claims | {"sub": "9" * 5000}, TEST_SECRET_KEY, algorithm=ALGORITHM
        ),
        "a tenant that is not a UUID": jwt.encode(
            claims | {"tid": "1 OR 1=1"}, TEST_SECRET_KEY, algorithm=ALGORITHM
        ),
        "a subject that is not plain digits": jwt.encode(
            claims | {"sub": f" {a.user_id} "}, TEST_SECRET_KEY, algorithm=ALGORITHM
        ),
        "a tenant in another UUID spelling": jwt.encode(
            claims | {"tid": f"{{{a.tenant_id}}}"}, TEST_SECRET_KEY, algorithm=ALGORITHM
        ),
        "not a token": "not.a.token",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "signed with another key",
        "expired",
        "unsigned (alg none)",
        "without a tenant claim",
        "for a user of another tenant",
        "a user id out of range",
        "a user id of 5,000 digits",
        "a tenant that is not a UUID",
        "a subject that is not plain digits",
        "a tenant in another UUID spelling",
        "not a token",
    ],
)
async def test_a_token_the_api_did_not_issue_as_is_refused(
    anonymous_client: httpx.AsyncClient, tenants: Tenants, kind: str
) -> None:
    response = await anonymous_client.get("/books", headers=bearer(forged_tokens(tenants)[kind]))

    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"


async def test_a_tenant_header_changes_nothing(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient, tenants: Tenants
) -> None:
    author = await client.post("/authors", json={"name": "Tenant A's author"})

    forged = await other_client.get(
        f"/authors/{author.json()['id']}",
        headers={"X-Tenant-ID": str(tenants.a.id), "X-Tenant": tenants.a.slug},
    )

    assert forged.status_code == 404


async def test_a_suspended_tenant_cannot_log_in_and_its_tokens_stop_working(
    app: FastAPI,
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    tenants: Tenants,
    database_url: str,
) -> None:
    assert (await client.get("/books")).status_code == 200

    await set_status(database_url, tenants.a.slug, TenantStatus.SUSPENDED)
    with tenant_context(tenants.a.id):  # as the CLI does after its commit
        await app.state.tenant_cache.changed(ACCOUNT)

    refused = await log_in(anonymous_client, "alpha@example.com", PASSWORD)
    assert refused.status_code == 403
    assert refused.json()["code"] == "tenant_suspended"
    assert (await client.get("/books")).status_code == 403
    await set_status(database_url, tenants.a.slug, TenantStatus.ACTIVE)
    with tenant_context(tenants.a.id):
        await app.state.tenant_cache.changed(ACCOUNT)
    assert (await client.get("/books")).status_code == 200
