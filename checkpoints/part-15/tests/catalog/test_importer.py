"""Importing books from CSV: parsing (in a worker thread), then one transaction for all rows."""

import threading
from decimal import Decimal

import pytest

from shelfwise.catalog import importer
from shelfwise.catalog.errors import InvalidCsvError, InvalidCsvRowError
from shelfwise.catalog.importer import MAX_IMPORT_ROWS, import_books_csv, parse_books_csv
from shelfwise.catalog.service import BookService, NewBook
from tests.catalog.fakes import InMemoryBookRepository
from tests.platform.fakes import FakeUnitOfWork

HEADER = "isbn,title,author_id,price_amount,price_currency,category,publication_year\n"


def test_rows_become_new_books_numbered_like_a_spreadsheet() -> None:
    parsed = parse_books_csv(
        HEADER
        + "0-306-40615-2, A Wizard of Earthsea ,1,12.50,USD,Fantasy,1968\n"
        + "\n"  # blank lines are skipped
        + "9780441478125,The Left Hand of Darkness,1,9.99,USD,,\n"
    )

    assert parsed == [
        (2, NewBook("0-306-40615-2", "A Wizard of Earthsea", 1, Decimal("12.50"), "USD",
                    "Fantasy", 1968)),
        (4, NewBook("9780441478125", "The Left Hand of Darkness", 1, Decimal("9.99"), "USD")),
    ]  # fmt: skip


def test_optional_columns_may_be_left_out_and_columns_reordered() -> None:
    parsed = parse_books_csv("title,isbn,price_currency,price_amount,author_id\nT,123,EUR,5,2\n")

    assert parsed == [(2, NewBook("123", "T", 2, Decimal(5), "EUR"))]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("9780441478125,Title,one,9.99,USD,,", "author_id must be a whole number"),
        ("9780441478125,Title,1,abc,USD,,", "price_amount must be a decimal number"),
        ("9780441478125,Title,1,NaN,USD,,", "price_amount must be a decimal number"),
        ("9780441478125,Title,1,1e30,USD,,", "price_amount must be a decimal number"),
        ("9780441478125,Title,1,9.99,USD,,MCMLXVIII", "publication_year must be a whole number"),
        ("9780441478125,,1,9.99,USD,,", "Required fields are empty: title"),
        ("9780441478125,Title,1", "Required fields are empty: price_amount, price_currency"),
        ("9780441478125,Title,1,9.99,USD,,,surplus", "more fields than the header"),
    ],
)
def test_unreadable_rows_are_reported_not_raised(row: str, message: str) -> None:
    ((number, error),) = parse_books_csv(HEADER + row + "\n")

    assert number == 2
    assert isinstance(error, InvalidCsvRowError)
    assert message in error.detail


@pytest.mark.parametrize("text", ["", "isbn,title\n9780441478125,Title\n"])
def test_a_file_without_the_required_columns_is_refused(text: str) -> None:
    with pytest.raises(InvalidCsvError, match="missing: "):
        parse_books_csv(text)


def test_a_file_with_too_many_rows_is_refused() -> None:
    rows = "9780441478125,Title,1,9.99,USD,,\n" * (MAX_IMPORT_ROWS + 1)

    with pytest.raises(InvalidCsvError, match=f"at most {MAX_IMPORT_ROWS} rows"):
        parse_books_csv(HEADER + rows)


async def test_valid_rows_are_imported_and_every_other_row_is_reported(
    service: BookService, books: InMemoryBookRepository, uow: FakeUnitOfWork
) -> None:
    report = await import_books_csv(
        HEADER
        + "0-306-40615-2,A Wizard of Earthsea,1,12.50,USD,,\n"  # row 2: imported
        + "978-0-306-40615-8,Bad Checksum,1,9.99,USD,,\n"  # row 3
        + "9780441478125,Unknown Author,7,9.99,USD,,\n"  # row 4
        + "9780306406157,Earthsea Again,1,9.99,USD,,\n"  # row 5: same ISBN as row 2
        + "9780061054884,Free,1,0,USD,,\n"  # row 6
        + "9780807083697,Kindred,one,8.99,USD,,\n"  # row 7
        + "9780441478125,The Left Hand of Darkness,1,9.99,USD,,\n",  # row 8: imported
        service,
    )

    assert report.imported == 2
    assert [(error.row, error.code) for error in report.errors] == [
        (3, "invalid_isbn"),
        (4, "author_not_found"),
        (5, "duplicate_isbn"),
        (6, "price_out_of_range"),
        (7, "invalid_csv_row"),
    ]
    page = await books.list(limit=10, offset=0)
    assert [book.title for book in page.items] == [
        "A Wizard of Earthsea",
        "The Left Hand of Darkness",
    ]
    assert uow.commits == 1  # one transaction for the whole file


async def test_parsing_runs_in_a_worker_thread(
    service: BookService, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    parse = importer.parse_books_csv

    def recording_parse(text: str) -> list[tuple[int, NewBook | InvalidCsvRowError]]:
        threads.append(threading.current_thread())
        return parse(text)

    monkeypatch.setattr(importer, "parse_books_csv", recording_parse)

    await import_books_csv(HEADER, service)

    assert threads
    assert threads[0] is not threading.main_thread()
