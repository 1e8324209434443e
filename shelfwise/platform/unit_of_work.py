"""The unit of work: one business transaction that is committed whole or not at all."""

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from shelfwise.platform.errors import ConcurrentUpdateError


class UnitOfWork(Protocol):
    """A transaction boundary owned by a service.

    Usage::

        async with uow:
            ...  # reads and writes through repositories
            await uow.commit()

    Leaving the block without calling ``commit()`` (because of an exception, or because the
    code simply did not commit) undoes every write made inside it.
    """

    async def __aenter__(self) -> Self:
        """Start the unit of work."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """End the unit of work, rolling back anything not committed."""
        ...

    async def commit(self) -> None:
        """Make every write in this unit of work permanent.

        Raises ``ConcurrentUpdateError`` when a versioned row changed since it was read.
        """
        ...


class SqlUnitOfWork:
    """A unit of work over one ``AsyncSession`` (the session of the current request)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # After a commit there is nothing left to roll back, so this only undoes
        # uncommitted work.
        await self._session.rollback()

    async def commit(self) -> None:
        await commit_versioned(self._session)


async def commit_versioned(session: AsyncSession) -> None:
    """Commit ``session``; a versioned row (``version_id_col``) that someone else changed since
    it was read is a ``ConcurrentUpdateError``, which services understand, not SQLAlchemy's."""
    try:
        await session.commit()
    except StaleDataError as error:
        await session.rollback()
        raise ConcurrentUpdateError(
            "The record changed while this request was changing it."
        ) from error
