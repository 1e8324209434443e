"""ISBN validation and normalization.

Books are stored under one canonical form: the 13 digits of the ISBN-13, with no separators.
ISBN-10s (used before 2007) are converted by prefixing 978 and recomputing the check digit.
"""

from shelfwise.catalog.errors import InvalidIsbnError

_SEPARATORS = str.maketrans("", "", "- ")
_ISBN13_PREFIXES = ("978", "979")


def normalize_isbn(raw: str) -> str:
    """Return the canonical 13-digit form of an ISBN-10 or ISBN-13.

    Hyphens and spaces are ignored; an ISBN-10 may end in ``X`` (meaning 10). Raises
    ``InvalidIsbnError`` saying whether the length, the characters or the checksum is wrong.
    """
    isbn = raw.translate(_SEPARATORS).upper()
    if len(isbn) not in (10, 13):
        raise InvalidIsbnError(
            f"An ISBN has 10 or 13 digits, but {raw!r} has {len(isbn)} characters."
        )
    if len(isbn) == 10:
        _check_isbn10(raw, isbn)
        return _with_isbn13_check_digit("978" + isbn[:9])
    _check_isbn13(raw, isbn)
    return isbn


def _check_isbn10(raw: str, isbn: str) -> None:
    body, check = isbn[:9], isbn[9]
    if not (_is_digits(body) and (_is_digits(check) or check == "X")):
        raise InvalidIsbnError(
            f"An ISBN-10 is 9 digits followed by a digit or X, which {raw!r} is not."
        )
    # Weights 10, 9, ..., 1; a valid ISBN-10 sums to a multiple of 11. X stands for 10.
    values = [int(digit) for digit in body] + [10 if check == "X" else int(check)]
    if sum(weight * value for weight, value in zip(range(10, 0, -1), values, strict=True)) % 11:
        raise InvalidIsbnError(f"The check digit of ISBN-10 {raw!r} is wrong.")


def _check_isbn13(raw: str, isbn: str) -> None:
    if not _is_digits(isbn):
        raise InvalidIsbnError(f"An ISBN-13 contains only digits, which {raw!r} does not.")
    if not isbn.startswith(_ISBN13_PREFIXES):
        raise InvalidIsbnError(f"An ISBN-13 starts with 978 or 979, which {raw!r} does not.")
    if _with_isbn13_check_digit(isbn[:12]) != isbn:
        raise InvalidIsbnError(f"The check digit of ISBN-13 {raw!r} is wrong.")


def _is_digits(text: str) -> bool:
    # isdecimal() alone would accept non-ASCII digits such as Arabic-Indic ones.
    return text.isascii() and text.isdecimal()


def _with_isbn13_check_digit(first_12_digits: str) -> str:
    # Weights alternate 1, 3, 1, 3, ...; the check digit makes the total a multiple of 10.
    total = sum(int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(first_12_digits))
    return first_12_digits + str(-total % 10)
