"""Money: exact, rounded to the cent, one currency at a time."""

from decimal import Decimal
from functools import reduce
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.platform.errors import InvalidInputError
from shelfwise.platform.money import CurrencyMismatchError, InvalidCurrencyError, Money

# Reproducible runs that leave no example database behind.
deterministic = settings(database=None, derandomize=True)
cents = st.decimals(min_value=Decimal("-10000"), max_value=Decimal("10000"), places=2)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


@pytest.mark.parametrize(
    ("raw", "rounded"),
    [("0.125", "0.12"), ("0.135", "0.14"), ("2.675", "2.68"), ("-0.125", "-0.12"), ("7", "7.00")],
)
def test_amounts_are_rounded_half_even_to_the_cent(raw: str, rounded: str) -> None:
    assert usd(raw).amount == Decimal(rounded)
    assert str(usd(raw).amount) == rounded


def test_equal_amounts_compare_equal_whatever_their_written_precision() -> None:
    assert usd("12.5") == usd("12.50")


def test_a_float_amount_is_refused() -> None:
    amount: Any = 12.5  # what a careless caller might pass
    with pytest.raises(TypeError, match="Decimal"):
        Money(amount, "USD")


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U5D", "ÜSD", ""])
def test_a_currency_must_be_three_upper_case_letters(currency: str) -> None:
    with pytest.raises(InvalidCurrencyError) as raised:
        Money(Decimal(1), currency)

    assert raised.value.code == "invalid_currency"


def test_add_and_subtract_in_one_currency() -> None:
    assert usd("12.50").add(usd("0.75")) == usd("13.25")
    assert usd("12.50").subtract(usd("0.75")) == usd("11.75")


def test_combining_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatchError, match="USD and EUR"):
        usd("1.00").add(Money(Decimal("1.00"), "EUR"))
    with pytest.raises(CurrencyMismatchError):
        usd("1.00").subtract(Money(Decimal("1.00"), "EUR"))


def test_times_multiplies_by_a_whole_number() -> None:
    assert usd("8.99").times(4) == usd("35.96")
    assert usd("8.99").times(0) == Money.zero("USD")


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        ("110.96", "5", "105.41"),  # 105.412 rounds down
        ("10.05", "10", "9.04"),  # 9.045: half-even rounds to the even cent
        ("10.15", "10", "9.14"),  # 9.135: ... which here means rounding up
        ("20.00", "0", "20.00"),
        ("20.00", "100", "0.00"),
    ],
)
def test_discounted(amount: str, percent: str, expected: str) -> None:
    assert usd(amount).discounted(Decimal(percent)) == usd(expected)


@pytest.mark.parametrize("percent", ["-1", "100.01"])
def test_a_discount_outside_0_to_100_percent_is_refused(percent: str) -> None:
    with pytest.raises(InvalidInputError):
        usd("10.00").discounted(Decimal(percent))


def test_str_shows_amount_and_currency() -> None:
    assert str(usd("12.5")) == "12.50 USD"


@deterministic
@given(amount=cents, copies=st.integers(min_value=1, max_value=20))
def test_times_equals_repeated_addition(amount: Decimal, copies: int) -> None:
    price = Money(amount, "USD")

    assert price.times(copies) == reduce(Money.add, [price] * copies)


@deterministic
@given(a=cents, b=cents)
def test_subtract_undoes_add(a: Decimal, b: Decimal) -> None:
    assert Money(a, "USD").add(Money(b, "USD")).subtract(Money(b, "USD")) == Money(a, "USD")


@deterministic
@given(a=cents, b=cents, c=cents)
def test_addition_in_one_currency_is_associative_and_commutative(
    a: Decimal, b: Decimal, c: Decimal
) -> None:
    x, y, z = Money(a, "USD"), Money(b, "USD"), Money(c, "USD")

    assert x.add(y) == y.add(x)
    assert x.add(y).add(z) == x.add(y.add(z))


@deterministic
@given(
    subtotal=st.decimals(min_value=Decimal(0), max_value=Decimal("100000"), places=2),
    percent=st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2),
)
def test_a_discount_is_never_negative_and_never_above_the_subtotal(
    subtotal: Decimal, percent: Decimal
) -> None:
    before = Money(subtotal, "USD")

    after = before.discounted(percent)
    discount = before.subtract(after)

    assert Money.zero("USD").amount <= discount.amount <= before.amount
    assert Money.zero("USD").amount <= after.amount <= before.amount
