"""HTTP routes of the identity feature: logging in."""

from typing import Annotated

from fastapi import APIRouter, Form
from pydantic import BaseModel

from shelfwise.identity.dependencies import TOKEN_PATH, AuthServiceDep
from shelfwise.identity.errors import InvalidCredentialsError, TenantSuspendedError
from shelfwise.identity.models import EMAIL_LENGTH
from shelfwise.platform.problems import problem_responses
from shelfwise.platform.schemas import NO_NUL

# Long enough for any passphrase; short enough that hashing it is no denial of service.
PASSWORD_LENGTH = 1024


class TokenRead(BaseModel):
    """An OAuth2 access token response (RFC 6749, section 5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


def create_router() -> APIRouter:
    """The identity routes."""
    router = APIRouter(tags=["identity"])

    @router.post(
        TOKEN_PATH,
        responses=problem_responses(InvalidCredentialsError, TenantSuspendedError),
    )
    async def log_in(
        username: Annotated[str, Form(max_length=EMAIL_LENGTH, pattern=NO_NUL)],
        password: Annotated[str, Form(max_length=PASSWORD_LENGTH)],
        service: AuthServiceDep,
    ) -> TokenRead:
        """Exchange an email (as ``username``) and password for a bearer token.

        This is OAuth2's password flow, which the interactive docs' *Authorize* button speaks.
        """
        access = await service.log_in(username, password)
        return TokenRead(access_token=access.token, expires_in=access.expires_in_seconds)

    return router
