"""The outside services an order's saga calls: a payment gateway and a carrier.

Both are protocols; the fakes below ship with the app, so the quick start, the tests and the
notebooks run the whole saga without an account anywhere. Each call takes an idempotency key
that names the order and the step: calling again with the same key returns the first result
and moves no money twice, which is how real gateways (Stripe's ``Idempotency-Key``) make a
retried step safe.

An adapter for a real service must keep two rules. A call whose key is still being processed
by an earlier call (Stripe answers 409) is ``StepUnavailableError``, never a refusal: the
first call may yet succeed. And a gateway forgets keys after a while (Stripe: 24 hours), so a
saga must not be retried later than that; recovery takes stalled sagas within seconds.
"""

import asyncio
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from shelfwise.platform.money import Money


class StepRefusedError(Exception):
    """The outside service said no, for good: retrying cannot help, so the saga compensates."""


class StepUnavailableError(Exception):
    """The outside service could not answer now: the saga stays where it is and is retried."""


class PaymentDeclinedError(StepRefusedError):
    """The gateway declined the charge."""


class ShipmentRefusedError(StepRefusedError):
    """The carrier will not take the parcel."""


class PaymentGateway(Protocol):
    """Moves the buyer's money."""

    async def charge(self, key: str, amount: Money) -> str:
        """Charge ``amount`` once per ``key``; return the charge's id.

        Raises ``PaymentDeclinedError`` or ``StepUnavailableError``.
        """
        ...

    async def refund(self, key: str, charge_id: str, amount: Money) -> str:
        """Give ``amount`` of the charge back, once per ``key``; return the refund's id."""
        ...


class Carrier(Protocol):
    """Takes parcels to buyers."""

    async def ship(self, key: str, copies: int) -> str:
        """Book one shipment per ``key``; return its tracking number.

        Raises ``ShipmentRefusedError`` or ``StepUnavailableError``.
        """
        ...


# A card limit, so a learner can see a decline: order more than this.
FAKE_DECLINE_ABOVE = Decimal("10000.00")
# A carrier's largest parcel, so a learner can see a refund: order more copies than this.
FAKE_MAX_PARCEL_COPIES = 500


def _reference(prefix: str, key: str) -> str:
    """The same id for the same key, in every process: a retry after a crash finds it."""
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass
class FakePaymentGateway:
    """A gateway that declines charges above ``decline_above`` and accepts the rest.

    ``delay_seconds`` makes every call slow, to rehearse a crash in the middle of a charge.
    ``charges`` and ``refunds`` are kept by key, as a real gateway keeps them.
    """

    decline_above: Decimal = FAKE_DECLINE_ABOVE
    delay_seconds: float = 0.0
    charges: dict[str, Money] = field(default_factory=dict)
    refunds: dict[str, str] = field(default_factory=dict)

    async def charge(self, key: str, amount: Money) -> str:
        await asyncio.sleep(self.delay_seconds)
        if key not in self.charges:
            if amount.amount > self.decline_above:
                raise PaymentDeclinedError(f"declined: {amount} is above the card's limit")
            self.charges[key] = amount
        return _reference("ch_", key)

    async def refund(self, key: str, charge_id: str, amount: Money) -> str:
        await asyncio.sleep(self.delay_seconds)
        self.refunds.setdefault(key, charge_id)
        return _reference("re_", key)


@dataclass
class FakeCarrier:
    """A carrier that takes parcels of up to ``max_copies`` copies and refuses larger ones."""

    max_copies: int = FAKE_MAX_PARCEL_COPIES
    shipments: dict[str, int] = field(default_factory=dict)

    async def ship(self, key: str, copies: int) -> str:
        if copies > self.max_copies:
            raise ShipmentRefusedError(
                f"refused: {copies} copies is more than one parcel's {self.max_copies}"
            )
        self.shipments.setdefault(key, copies)
        return _reference("SW", key).upper()
