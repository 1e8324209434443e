"""Access tokens: signed JWTs that say which user, of which tenant, until when."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

ALGORITHM = "HS256"
ISSUER = "shelfwise"
TENANT_CLAIM = "tid"
# User ids are 32-bit integers; a claim outside them never reaches a query.
USER_IDS = range(1, 2**31)


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: int
    tenant_id: UUID


class InvalidTokenError(Exception):
    """The token is malformed, signed with another key, expired, or lacks a claim."""


class TokenSigner:
    """Issues and verifies access tokens with one secret key.

    HS256 with a shared secret suits one service that both issues and checks its tokens; a
    service that only checks tokens issued elsewhere would verify a public key (RS256/EdDSA).
    """

    def __init__(
        self,
        secret_key: str,
        lifetime: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._secret_key = secret_key
        self._lifetime = lifetime
        self._clock = clock

    @property
    def lifetime(self) -> timedelta:
        """How long a token is valid after it was issued."""
        return self._lifetime

    def issue(self, principal: Principal) -> str:
        """A token for ``principal``, valid for the signer's lifetime from now."""
        now = self._clock()
        claims = {
            "iss": ISSUER,
            "sub": str(principal.user_id),
            TENANT_CLAIM: str(principal.tenant_id),
            "iat": now,
            "exp": now + self._lifetime,
        }
        return jwt.encode(claims, self._secret_key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; ``InvalidTokenError`` for anything else."""
        try:
            # algorithms is a fixed list: the token's own header never picks the algorithm
            # (the "alg": "none" attack).
            claims = jwt.decode(
                token,
                self._secret_key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "sub", TENANT_CLAIM]},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidTokenError(str(error)) from error
        return _principal(claims["sub"], claims[TENANT_CLAIM])


def _principal(subject: object, tenant: object) -> Principal:
    # Only the forms issue() writes: ASCII digits, and a UUID in its canonical text.
    # At most 10 digits: int() refuses longer strings than 4,300 digits with a ValueError.
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        raise InvalidTokenError("the subject is not a user id")
    if len(subject) > len(str(USER_IDS.stop)):
        raise InvalidTokenError("the user id is out of range")
    if int(subject) not in USER_IDS:
        raise InvalidTokenError("the user id is out of range")
    try:
        tenant_id = UUID(str(tenant))
    except ValueError:
        raise InvalidTokenError("the tenant is not a UUID") from None
    if str(tenant_id) != tenant:
        raise InvalidTokenError("the tenant is not a UUID in canonical form")
    return Principal(int(subject), tenant_id)
