"""Persistence plumbing shared by every feature."""

from typing import TypeVar

from sqlalchemy import MetaData, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from shelfwise.platform.pagination import Page, ensure_valid_window

T = TypeVar("T")

# Deterministic constraint names, so migrations (and error messages) can refer to a constraint
# by a name we chose rather than one the database invented.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every ORM model; its metadata describes the whole schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


async def fetch_page(session: AsyncSession, matches: Select[T], limit: int, offset: int) -> Page[T]:
    """Run ``matches`` (filters, ordering and loader options included) for one page of results.

    The total is counted over the same statement, so it applies the same filters. It is a second
    statement, though: under READ COMMITTED a commit in between can make the two disagree.
    """
    ensure_valid_window(limit, offset)
    matching = matches.order_by(None).subquery()
    total = await session.scalar(select(func.count()).select_from(matching))
    items = await session.scalars(matches.limit(limit).offset(offset))
    return Page(items=items.all(), total=total or 0, limit=limit, offset=offset)
