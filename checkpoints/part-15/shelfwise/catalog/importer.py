"""Importing books from CSV: parse off the event loop, then add row by row in one transaction.

The CSV has a header row naming its columns, in any order::

    isbn,title,author_id,price_amount,price_currency,category,publication_year
    0-306-40615-2,A Wizard of Earthsea,1,12.50,USD,Fantasy,1968

``category`` and ``publication_year`` may be left out or empty. Rows are numbered as a
spreadsheet shows them: the header is row 1. A row that breaks a rule is reported with its number
and problem code; every other row is imported.
"""

import asyncio
import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shelfwise.catalog.errors import InvalidCsvError, InvalidCsvRowError, InvalidIsbnError
from shelfwise.catalog.isbn import normalize_isbn
from shelfwise.catalog.models import CATEGORY_LENGTH, TITLE_LENGTH
from shelfwise.catalog.service import BookService, NewBook
from shelfwise.platform.errors import DomainError
from shelfwise.platform.schemas import MAX_INT, MAX_YEAR, MIN_YEAR

REQUIRED_COLUMNS = ("isbn", "title", "author_id", "price_amount", "price_currency")
OPTIONAL_COLUMNS = ("category", "publication_year")
# Bounds the work (and the transaction) one request can cause.
MAX_IMPORT_ROWS = 1_000
# The text columns' lengths, as the API's schemas bound them too. (The ISBN and the currency
# are checked whole by the service.)
MAX_LENGTHS = {"title": TITLE_LENGTH, "category": CATEGORY_LENGTH}


@dataclass(frozen=True)
class RowError:
    """Why one row was not imported."""

    row: int
    code: str
    detail: str


@dataclass(frozen=True)
class ImportReport:
    """The outcome of one import: how many books were added, and every rejected row."""

    imported: int
    errors: tuple[RowError, ...]


async def import_books_csv(text: str, books: BookService) -> ImportReport:
    """Import the books in ``text`` through ``books``; see the module docstring for the format.

    Parsing is plain CPU work with no ``await`` in it: on a large file it would stall every other
    request on this event loop, so it runs in a worker thread (``asyncio.to_thread``). Adding the
    books stays on the loop, one row after the other: the rows share one session, and a session
    must never be used by two tasks at once. Raises ``InvalidCsvError`` if the file as a whole
    cannot be read; then nothing is imported.
    """
    parsed = await asyncio.to_thread(parse_books_csv, text)
    # Insert in ISBN order: two imports of the same books then wait for each other instead of
    # each holding a row the other needs (a deadlock on PostgreSQL).
    readable = sorted(
        ((row, book) for row, book in parsed if isinstance(book, NewBook)),
        key=lambda pair: _isbn_order(pair[1].isbn),
    )
    results = await books.add_books([book for _, book in readable])
    errors = [_row_error(row, error) for row, error in parsed if isinstance(error, DomainError)]
    imported = 0
    for (row, _), result in zip(readable, results, strict=True):
        if isinstance(result, DomainError):
            errors.append(_row_error(row, result))
        else:
            imported += 1
    return ImportReport(
        imported=imported, errors=tuple(sorted(errors, key=lambda error: error.row))
    )


def parse_books_csv(text: str) -> list[tuple[int, NewBook | InvalidCsvRowError]]:
    """Read every row of ``text`` into a ``NewBook``, or the reason it cannot be read.

    Only the shape of each row is checked here (fields present, numbers that are numbers); the
    catalog's rules (ISBN checksum, price range, author) are the service's job.
    """
    # newline="" lets the csv module see every line ending (a bare CR included), as its
    # documentation asks; a UTF-8 byte order mark (Excel's export) is not part of the header.
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    columns = reader.fieldnames or []
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise InvalidCsvError(
            f"The header row must name the columns {', '.join(REQUIRED_COLUMNS)}; "
            f"missing: {', '.join(missing)}."
        )
    parsed: list[tuple[int, NewBook | InvalidCsvRowError]] = []
    while True:
        book: NewBook | InvalidCsvRowError
        try:
            book = _new_book(next(reader))
        except StopIteration:
            return parsed
        except csv.Error as error:  # e.g. a field over the csv module's 128 KiB limit
            book = InvalidCsvRowError(f"The row cannot be read as CSV: {error}.")
        except InvalidCsvRowError as error:
            book = error
        if len(parsed) == MAX_IMPORT_ROWS:
            raise InvalidCsvError(f"An import has at most {MAX_IMPORT_ROWS} rows.")
        # The line the record ends on; blank lines count, as in an editor. Asked of the inner
        # reader: DictReader's own count skips a line that failed to parse.
        parsed.append((reader.reader.line_num, book))


def _new_book(record: dict[str | None, str | None]) -> NewBook:
    # DictReader files surplus fields under the key None and fills missing ones with None.
    if None in record:
        raise InvalidCsvRowError("The row has more fields than the header has columns.")
    fields = {column: (value or "").strip() for column, value in record.items() if column}
    empty = [column for column in REQUIRED_COLUMNS if not fields[column]]
    if empty:
        raise InvalidCsvRowError(f"Required fields are empty: {', '.join(empty)}.")
    for column, limit in MAX_LENGTHS.items():
        if len(fields.get(column, "")) > limit:
            raise InvalidCsvRowError(f"{column} is longer than {limit} characters.")
    if any("\x00" in value for value in fields.values()):
        raise InvalidCsvRowError("The row contains a NUL character.")
    year = fields.get("publication_year")
    return NewBook(
        isbn=fields["isbn"],
        title=fields["title"],
        author_id=_whole_number("author_id", fields["author_id"], 1, MAX_INT),
        price_amount=_amount(fields["price_amount"]),
        price_currency=fields["price_currency"],
        category=fields.get("category") or None,
        publication_year=(
            _whole_number("publication_year", year, MIN_YEAR, MAX_YEAR) if year else None
        ),
    )


def _whole_number(column: str, text: str, low: int, high: int) -> int:
    # The API's bounds for the same field. Length first: int() refuses over 4,300 digits.
    digits = text.lstrip("0") or "0"
    fits = text.isascii() and text.isdecimal() and len(digits) <= len(str(high))
    if not fits or not low <= int(digits) <= high:
        raise InvalidCsvRowError(f"{column} must be a whole number from {low} to {high}.")
    return int(digits)


def _isbn_order(isbn: str) -> str:
    try:
        return normalize_isbn(isbn)
    except InvalidIsbnError:
        return isbn  # the service rejects it; where it sorts does not matter


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    # NaN, infinities and absurdly large numbers are not prices; Decimal would accept them.
    if not amount.is_finite() or amount.adjusted() >= 10:
        raise InvalidCsvRowError(f"price_amount must be a decimal number, got {text!r}.")
    return amount


def _row_error(row: int, error: DomainError) -> RowError:
    return RowError(row=row, code=error.code, detail=error.detail)
