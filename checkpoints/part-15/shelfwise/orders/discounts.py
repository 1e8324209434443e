"""The bulk-discount policy: pure functions, no I/O, easy to test and to change."""

from decimal import Decimal
from typing import NamedTuple


class DiscountTier(NamedTuple):
    """From ``min_copies`` copies in one quote on, ``percent`` is taken off the subtotal."""

    min_copies: int
    percent: Decimal


# Bookstores ordering in bulk pay less: 5 % from 10 copies, 10 % from 50 (across all titles).
BULK_DISCOUNT_TIERS: tuple[DiscountTier, ...] = (
    DiscountTier(min_copies=10, percent=Decimal(5)),
    DiscountTier(min_copies=50, percent=Decimal(10)),
)


def bulk_discount_percent(
    total_copies: int, tiers: tuple[DiscountTier, ...] = BULK_DISCOUNT_TIERS
) -> Decimal:
    """Return the discount percent for ``total_copies``: the best tier reached, else 0."""
    return max(
        (tier.percent for tier in tiers if total_copies >= tier.min_copies),
        default=Decimal(0),
    )
