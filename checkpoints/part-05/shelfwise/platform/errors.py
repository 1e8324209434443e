"""The domain error hierarchy.

Features raise subclasses of the three base kinds below. Only the outermost layer decides what a
kind means for a transport (for HTTP: 404, 409 or 422), so services stay free of HTTP details.
"""

from typing import ClassVar


class DomainError(Exception):
    """A business rule was broken.

    ``code`` is a stable, machine-readable identifier that clients may rely on; ``detail`` is a
    human-readable explanation that may change wording over time.
    """

    code: ClassVar[str] = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    """The thing the caller referred to does not exist."""

    code: ClassVar[str] = "not_found"


class ConflictError(DomainError):
    """The request is valid on its own but clashes with the current state."""

    code: ClassVar[str] = "conflict"


class InvalidInputError(DomainError):
    """The request breaks a rule no matter what the current state is."""

    code: ClassVar[str] = "invalid_input"
