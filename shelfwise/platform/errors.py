"""The domain error hierarchy.

Features raise subclasses of the base kinds below. Only the outermost layer decides what a kind
means for a transport (for HTTP: 401, 403, 404, 409, 412, 422, 429 or 503), so services stay free of
HTTP details.
"""

from typing import ClassVar


class DomainError(Exception):
    """A business rule was broken.

    ``code`` is a stable, machine-readable identifier that clients may rely on, and ``title`` a
    short summary that is the same for every occurrence; ``detail`` explains this occurrence and
    may change wording over time. The docstring of each subclass describes its problem type to
    API clients (``GET /problems/{code}``), so write it for them.
    """

    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "Business rule broken"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    """The thing the caller referred to does not exist."""

    code: ClassVar[str] = "not_found"
    title: ClassVar[str] = "Not found"


class ConflictError(DomainError):
    """The request is valid on its own but clashes with the current state."""

    code: ClassVar[str] = "conflict"
    title: ClassVar[str] = "Conflict"


class ConcurrentUpdateError(ConflictError):
    """Someone else changed the same record between this request's read and its write, so the
    write was refused rather than lost. Read the record again and retry."""

    code: ClassVar[str] = "concurrent_update"
    title: ClassVar[str] = "Changed by someone else"


class PreconditionFailedError(DomainError):
    """The record no longer matches the `If-Match` header: it has changed since the caller
    read it. Read it again (for its new `ETag`) and decide afresh."""

    code: ClassVar[str] = "precondition_failed"
    title: ClassVar[str] = "Precondition failed"


class AuthenticationError(DomainError):
    """The request does not prove who is calling: no token, or one that fails verification."""

    code: ClassVar[str] = "not_authenticated"
    title: ClassVar[str] = "Not authenticated"


class ForbiddenError(DomainError):
    """The caller is known, but may not do this."""

    code: ClassVar[str] = "forbidden"
    title: ClassVar[str] = "Forbidden"


class InvalidInputError(DomainError):
    """The request breaks a rule no matter what the current state is."""

    code: ClassVar[str] = "invalid_input"
    title: ClassVar[str] = "Invalid input"


class TooManyRequestsError(DomainError):
    """The caller sent more than its share of requests. Retry after the number of seconds in
    the `Retry-After` header."""

    code: ClassVar[str] = "too_many_requests"
    title: ClassVar[str] = "Too many requests"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class UnavailableError(DomainError):
    """The service cannot answer right now: it is overloaded, or something it depends on is
    down or too slow. Retry after the number of seconds in the `Retry-After` header."""

    code: ClassVar[str] = "unavailable"
    title: ClassVar[str] = "Service unavailable"

    def __init__(self, detail: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
