"""FastAPI dependencies of the identity feature: who is calling, as a verified principal."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

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
    principal = AuthService.verify(signer, token)
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
