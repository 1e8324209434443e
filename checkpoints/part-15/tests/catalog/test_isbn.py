"""ISBN validation and normalization to the canonical ISBN-13."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.catalog.errors import InvalidIsbnError
from shelfwise.catalog.isbn import normalize_isbn
from tests.factories import with_isbn13_check_digit

# Reproducible runs that leave no example database behind.
deterministic = settings(database=None, derandomize=True)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("0-306-40615-2", "9780306406157"),  # ISBN-10 → 978-prefixed ISBN-13
        ("0306406152", "9780306406157"),
        ("978-0-306-40615-7", "9780306406157"),  # the same book as an ISBN-13
        ("978 0 306 40615 7", "9780306406157"),
        ("0-8044-2957-X", "9780804429573"),  # X is a check digit of 10
        ("080442957x", "9780804429573"),
        ("978-0-441-47812-5", "9780441478125"),
        ("979-10-90636-07-1", "9791090636071"),  # 979 prefix, no ISBN-10 equivalent
    ],
)
def test_valid_isbns_normalize_to_13_digits(raw: str, canonical: str) -> None:
    assert normalize_isbn(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0-306-40615-3", "check digit"),
        ("978-0-306-40615-8", "check digit"),
        ("0-306-40615-X", "check digit"),
        ("12345", "10 or 13 digits"),
        ("", "10 or 13 digits"),
        ("97803064061570", "10 or 13 digits"),
        ("0-306-4061A-2", "9 digits followed by a digit or X"),
        ("X306406152", "9 digits followed by a digit or X"),
        ("978030640615X", "only digits"),
        ("٠٣٠٦٤٠٦١٥٢", "9 digits followed by a digit or X"),  # non-ASCII digits
        ("1234567890128", "starts with 978 or 979"),
    ],
)
def test_invalid_isbns_are_rejected_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIsbnError, match=reason) as raised:
        normalize_isbn(raw)

    assert raised.value.code == "invalid_isbn"


def isbn10_check_digit(first_9_digits: str) -> str:
    """Computed independently of the code under test: weights 10..2, remainder to 11."""
    remainder = -sum((10 - i) * int(d) for i, d in enumerate(first_9_digits)) % 11
    return "X" if remainder == 10 else str(remainder)


nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


@deterministic
@given(body=nine_digits)
def test_every_isbn10_maps_to_a_978_isbn13_that_normalizes_to_itself(body: str) -> None:
    isbn13 = normalize_isbn(body + isbn10_check_digit(body))

    assert isbn13.startswith("978" + body)
    assert normalize_isbn(isbn13) == isbn13


@deterministic
@given(body=nine_digits, position=st.integers(0, 12), delta=st.integers(1, 9))
def test_changing_any_single_digit_of_an_isbn13_is_detected(
    body: str, position: int, delta: int
) -> None:
    isbn13 = normalize_isbn(body + isbn10_check_digit(body))
    typo = isbn13[:position] + str((int(isbn13[position]) + delta) % 10) + isbn13[position + 1 :]

    with pytest.raises(InvalidIsbnError):
        normalize_isbn(typo)


@deterministic
@given(prefix=st.sampled_from(["978", "979"]), body=nine_digits)
def test_any_isbn13_with_its_check_digit_normalizes_to_itself(prefix: str, body: str) -> None:
    isbn13 = with_isbn13_check_digit(prefix + body)

    assert normalize_isbn(isbn13) == isbn13
    hyphenated = f"{isbn13[:3]}-{isbn13[3:5]}-{isbn13[5:12]}-{isbn13[12]}"
    assert normalize_isbn(hyphenated) == isbn13
