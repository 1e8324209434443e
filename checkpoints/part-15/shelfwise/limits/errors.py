"""The limits' problems: both are 429s, and both say when to come back."""

from typing import ClassVar

from shelfwise.platform.errors import TooManyRequestsError
from shelfwise.platform.rate_limit import Decision


class RateLimitedError(TooManyRequestsError):
    """The caller's tenant spent its quota for now. Retry after the number of seconds in the
    `Retry-After` header; the `RateLimit-Policy` and `RateLimit` headers give the quota and
    what is left of it."""

    code: ClassVar[str] = "rate_limited"
    title: ClassVar[str] = "Rate limit reached"

    def __init__(self, detail: str, decision: Decision) -> None:
        super().__init__(detail, retry_after_seconds=decision.retry_after_seconds)
        self.decision = decision  # what the response's RateLimit fields say


class TooManyConcurrentRequestsError(TooManyRequestsError):
    """The caller's tenant already has as many requests running as its plan allows. Wait for
    one of them to finish, or retry after the number of seconds in the `Retry-After` header."""

    code: ClassVar[str] = "too_many_concurrent_requests"
    title: ClassVar[str] = "Too many concurrent requests"
