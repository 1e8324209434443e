"""What the orders feature needs from storage."""

from dataclasses import dataclass
from typing import Protocol

from shelfwise.orders.models import Order


class OrderRepository(Protocol):
    """Stores and finds orders."""

    async def add(self, order: Order) -> Order:
        """Store a new order with its items and return it with ids assigned."""
        ...

    async def get(self, order_id: int) -> Order | None:
        """Return the order with this id and its items loaded, or ``None``."""
        ...


class OrderEvents(Protocol):
    """Hears about orders once their saga has confirmed them: what follows runs as jobs."""

    async def order_confirmed(self, order: Order) -> None:
        """``order`` was committed as confirmed. Must not raise: the order stands whatever
        happens here."""
        ...


@dataclass(frozen=True)
class StoredResponse:
    """The first attempt's answer, replayed to every repeat of its request."""

    status_code: int
    body: str


@dataclass(frozen=True)
class Claim:
    """This attempt holds an idempotency key."""

    key: str
    token: str


class IdempotencyKeys(Protocol):
    """The current tenant's idempotency keys: claimed, completed with a response, released."""

    async def claim(self, key: str, fingerprint: str) -> Claim | StoredResponse:
        """Claim ``key`` for this attempt, or return the response stored for it.

        Raises ``IdempotencyKeyReusedError`` (the key came with another body) and
        ``IdempotencyKeyInUseError`` (an attempt with it is in flight).
        """
        ...

    async def complete(self, claim: Claim, response: StoredResponse) -> None:
        """Store ``response`` for the claimed key in the order's own transaction, uncommitted;
        ``IdempotencyKeyInUseError`` if the claim was lost."""
        ...

    async def release(self, claim: Claim) -> None:
        """Give the key up after a failed attempt (best effort: the lease ends anyway)."""
        ...
