"""Conditional requests (RFC 9110, section 13): a version as an ``ETag``, and ``If-Match``.

A client that read a record with ``ETag: "7"`` sends ``If-Match: "7"`` with its change; the
change is made only if the record is still at version 7, else the answer is 412.
"""

from typing import Annotated

from fastapi import Header, Request

# Versions are PostgreSQL integers; a longer tag cannot be one of ours.
MAX_VERSION_DIGITS = 10
# Far more tags than a client needs (it sends the one it read), and a bound on the work.
MAX_TAGS = 16


def entity_tag(version: int) -> str:
    """The strong entity tag of a record at ``version``."""
    return f'"{version}"'


def matching_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` field accepts; ``None`` when it accepts any (absent, ``*``).

    Comparison is strong, as RFC 9110 requires for ``If-Match``: a weak tag (``W/"7"``) and
    anything that is not one of our tags match nothing, so the condition fails with 412,
    never a 500. An empty set is a condition no version meets.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for tag in if_match.split(",", MAX_TAGS)[:MAX_TAGS]:
        inner = tag.strip().removeprefix('"').removesuffix('"')
        ours = tag.strip() == f'"{inner}"' and inner.isascii() and inner.isdigit()
        # Exactly as we send it: "05" is another tag than "5", and matches nothing.
        if ours and len(inner) <= MAX_VERSION_DIGITS and inner == str(int(inner)):
            versions.add(int(inner))
    return frozenset(versions)


def if_match_of(request: Request) -> frozenset[int] | None:
    """``matching_versions`` of every ``If-Match`` line of ``request``: a field sent on
    several lines is one list (RFC 9110, section 5.3), not its first line."""
    lines = request.headers.getlist("if-match")
    return matching_versions(", ".join(lines) if lines else None)


IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="Change the record only if it is still at this version: the `ETag` it "
        'was read with, e.g. `"7"`. Otherwise the answer is 412.',
    ),
]
