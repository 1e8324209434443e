"""Exact money arithmetic."""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import ClassVar

from shelfwise.platform.errors import InvalidInputError

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


class InvalidCurrencyError(InvalidInputError):
    """A currency was not a three-letter upper-case code such as ``USD``."""

    code: ClassVar[str] = "invalid_currency"
    title: ClassVar[str] = "Invalid currency"


class CurrencyMismatchError(InvalidInputError):
    """Two amounts in different currencies were combined."""

    code: ClassVar[str] = "currency_mismatch"
    title: ClassVar[str] = "Currency mismatch"


@dataclass(frozen=True)
class Money:
    """An amount of one currency, always exact and always rounded to whole cents.

    Rounding is ROUND_HALF_EVEN (banker's rounding), so rounding errors do not all lean one
    way when many amounts are added up.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            # A float has already lost exactness; refuse it rather than hide the loss.
            raise TypeError(f"Money needs a Decimal amount, got {type(self.amount).__name__}.")
        code = self.currency
        if not (len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
            raise InvalidCurrencyError(
                f"A currency is a three-letter upper-case code such as USD, got {self.currency!r}."
            )
        # Frozen dataclass: the rounded amount has to be set through object.__setattr__.
        object.__setattr__(self, "amount", self.amount.quantize(CENT, rounding=ROUND_HALF_EVEN))

    @classmethod
    def zero(cls, currency: str) -> "Money":
        """Nothing, in ``currency``: the starting point for a sum."""
        return cls(Decimal(0), currency)

    def add(self, other: "Money") -> "Money":
        """Return the sum; both amounts must be in the same currency."""
        self._require_same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def subtract(self, other: "Money") -> "Money":
        """Return the difference; both amounts must be in the same currency."""
        self._require_same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> "Money":
        """Return the amount multiplied by a whole number, e.g. a unit price times copies."""
        return Money(self.amount * quantity, self.currency)

    def discounted(self, percent: Decimal) -> "Money":
        """Return the amount reduced by ``percent`` (0 to 100), rounded to the cent."""
        if not 0 <= percent <= HUNDRED:
            raise InvalidInputError(f"A discount is between 0 and 100 percent, got {percent}.")
        return Money(self.amount * (HUNDRED - percent) / HUNDRED, self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def _require_same_currency(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"Cannot combine {self.currency} and {other.currency} amounts."
            )
