"""The bulk-discount policy."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.orders.discounts import BULK_DISCOUNT_TIERS, DiscountTier, bulk_discount_percent


@pytest.mark.parametrize(
    ("copies", "percent"),
    [(0, "0"), (1, "0"), (9, "0"), (10, "5"), (49, "5"), (50, "10"), (1000, "10")],
)
def test_the_tier_reached_sets_the_percent(copies: int, percent: str) -> None:
    assert bulk_discount_percent(copies) == Decimal(percent)


def test_tiers_may_be_listed_in_any_order() -> None:
    reversed_tiers = tuple(reversed(BULK_DISCOUNT_TIERS))

    assert bulk_discount_percent(60, reversed_tiers) == Decimal(10)


def test_other_tiers_can_be_supplied() -> None:
    tiers = (DiscountTier(min_copies=3, percent=Decimal("2.5")),)

    assert bulk_discount_percent(2, tiers) == Decimal(0)
    assert bulk_discount_percent(3, tiers) == Decimal("2.5")


@settings(database=None, derandomize=True)
@given(copies=st.integers(min_value=0, max_value=10_000))
def test_ordering_more_copies_never_lowers_the_discount(copies: int) -> None:
    assert bulk_discount_percent(copies + 1) >= bulk_discount_percent(copies)
