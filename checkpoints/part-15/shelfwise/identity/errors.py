"""Errors of the identity feature."""

from typing import ClassVar

from shelfwise.platform.errors import AuthenticationError, ForbiddenError


class InvalidCredentialsError(AuthenticationError):
    """The email and password do not match a user. Which of the two is wrong is not said."""

    code: ClassVar[str] = "invalid_credentials"
    title: ClassVar[str] = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("The email or the password is wrong.")


class TokenRejectedError(AuthenticationError):
    """The request has no bearer token, or one that is malformed, expired, signed with another
    key, or whose user no longer exists. Log in again at POST /auth/token."""

    code: ClassVar[str] = "invalid_token"
    title: ClassVar[str] = "Missing or invalid token"


class TenantSuspendedError(ForbiddenError):
    """The caller's organisation is suspended: its data is kept, but nobody can use it until an
    operator reactivates it."""

    code: ClassVar[str] = "tenant_suspended"
    title: ClassVar[str] = "Tenant suspended"

    def __init__(self) -> None:
        super().__init__("Your organisation's account is suspended.")
