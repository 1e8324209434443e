"""The orders feature's per-tenant settings."""

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

from shelfwise.orders.discounts import BULK_DISCOUNT_TIERS, DiscountTier
from shelfwise.tenancy.config import tenant_setting

MAX_TIERS = 5
MAX_MIN_COPIES = 100_000
MAX_PERCENT = Decimal(50)


def _sensible(tiers: tuple[DiscountTier, ...]) -> tuple[DiscountTier, ...]:
    copies = [tier.min_copies for tier in tiers]
    if copies != sorted(set(copies)):
        raise ValueError("tiers must be in ascending order of min_copies, each once")
    for tier in tiers:
        if not 1 <= tier.min_copies <= MAX_MIN_COPIES:
            raise ValueError(f"min_copies must be from 1 to {MAX_MIN_COPIES}")
        if not 0 <= tier.percent <= MAX_PERCENT or tier.percent != round(tier.percent, 2):
            raise ValueError(f"percent must be from 0 to {MAX_PERCENT}, in hundredths")
    return tiers


BULK_DISCOUNT = tenant_setting(
    "orders.bulk_discount_tiers",
    Annotated[tuple[DiscountTier, ...], Field(max_length=MAX_TIERS), AfterValidator(_sensible)],
    default=BULK_DISCOUNT_TIERS,
    description="[min_copies, percent] pairs: from min_copies copies in one order on, percent "
    "off the subtotal (a distributor's negotiated terms)",
)
