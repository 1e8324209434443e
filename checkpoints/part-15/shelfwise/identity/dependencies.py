"""FastAPI dependencies of the identity feature: who is calling, as a verified principal."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.types import Scope

from shelfwise.identity.errors import TokenRejectedError
from shelfwise.identity.repository import SqlAccounts
from shelfwise.identity.service import AuthService
from shelfwise.identity.tokens import Principal, TokenSigner
from shelfwise.platform.dependencies import SAFE_METHODS, DatabaseDep, SessionDep
from shelfwise.platform.logs import bind_request_fields
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.dependencies import TenantCacheDep

TOKEN_PATH = "/auth/token"
# The cache's name for the answer to "may this user still act?": the CLI invalidates it when
# it suspends or reactivates a tenant.
ACCOUNT = "account"
ALLOWED = b"allowed"
# Where a request keeps its verified token and principal, so the token is verified once.
PRINCIPAL_STATE = "principal"
# Reads "Authorization: Bearer <token>", and tells the interactive docs where to log in.
# auto_error=False: a missing token is our own 401 problem, not FastAPI's plain error.
bearer_token = OAuth2PasswordBearer(tokenUrl=TOKEN_PATH, auto_error=False)


async def get_token_signer(request: Request) -> TokenSigner:
    """The signer ``create_app`` built from the settings."""
    signer: TokenSigner = request.app.state.token_signer
    return signer


async def get_auth_service(
    session: SessionDep, signer: Annotated[TokenSigner, Depends(get_token_signer)]
) -> AuthService:
    """The identity service over the request's session."""
    return AuthService(SqlAccounts(session), signer)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


def bearer_token_of(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, as ``bearer_token`` reads it."""
    scheme, token = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
    return token if scheme.lower() == "bearer" and token else None


def verified_principal(scope: Scope, signer: TokenSigner, token: str) -> Principal:
    """Who ``token`` speaks for, or ``TokenRejectedError``; verified once per request.

    Middleware that needs the caller before routing (the tenant's limits) and ``authenticate``
    both ask. The first answer is kept in the request's state, which no client can write,
    with the token it was verified from: it answers for that token only.
    """
    state = scope.setdefault("state", {})
    kept: tuple[str, Principal] | None = state.get(PRINCIPAL_STATE)
    if kept is not None and kept[0] == token:
        return kept[1]
    principal = AuthService.verify(signer, token)
    state[PRINCIPAL_STATE] = (token, principal)
    return principal


async def authenticate(
    request: Request,
    token: Annotated[str | None, Depends(bearer_token)],
    signer: Annotated[TokenSigner, Depends(get_token_signer)],
    database: DatabaseDep,
    cache: TenantCacheDep,
) -> AsyncIterator[Principal]:
    """The verified caller; for the rest of the request, their tenant is the current tenant.

    The tenant comes from the signed token and nothing else: no header, path or body can
    choose it. Whether the account may still act is cached (only a yes: a refusal is always
    asked of the database again). Only a miss opens a session, a short one of its own: a
    cached yes costs no session at all.
    """
    if token is None:
        raise TokenRejectedError("This route needs a bearer token; log in at POST /auth/token.")
    principal = verified_principal(request.scope, signer, token)
    # Every log line and the trace of the rest of the request say whose it was.
    bind_request_fields(tenant_id=str(principal.tenant_id), user_id=principal.user_id)
    with tenant_context(principal.tenant_id):

        async def allowed() -> bytes:
            # A write's check reads the primary: a replica may not have the suspension yet.
            reading = request.method in SAFE_METHODS
            async with database.session(read_only=reading) as session:
                await AuthService(SqlAccounts(session), signer).ensure_allowed(principal)
            return ALLOWED

        await cache.read(ACCOUNT, str(principal.user_id), allowed)
        yield principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
