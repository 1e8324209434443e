"""The rules every page of results follows."""

import pytest

from shelfwise.platform.pagination import MAX_PAGE_SIZE, InvalidPageError, Page


def test_a_page_keeps_its_window_and_total() -> None:
    page = Page(items=["b", "c"], total=3, limit=2, offset=1)

    assert (page.items, page.total, page.limit, page.offset) == (["b", "c"], 3, 2, 1)


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
def test_limits_at_the_edges_are_allowed(limit: int) -> None:
    assert Page(items=[], total=0, limit=limit, offset=0).limit == limit


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (0, 0, "limit must be between 1 and 100, got 0."),
        (MAX_PAGE_SIZE + 1, 0, "limit must be between 1 and 100, got 101."),
        (10, -1, "offset must not be negative, got -1."),
    ],
)
def test_an_invalid_window_is_rejected(limit: int, offset: int, message: str) -> None:
    with pytest.raises(InvalidPageError) as raised:
        Page(items=[], total=0, limit=limit, offset=offset)

    assert raised.value.detail == message
    assert raised.value.code == "invalid_page"
