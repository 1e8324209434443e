"""Test doubles for platform ports."""

from types import TracebackType
from typing import Self

from shelfwise.platform.unit_of_work import UnitOfWork


class FakeUnitOfWork:
    """Records what a service did with its transaction, instead of touching a database.

    ``rollbacks`` counts blocks left without a commit: exactly the blocks whose writes a real
    unit of work would undo.
    """

    def __init__(self) -> None:
        self.commits = 0
        self.rollbacks = 0
        self._committed = False

    async def __aenter__(self) -> Self:
        self._committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.rollbacks += 1

    async def commit(self) -> None:
        self.commits += 1
        self._committed = True


def _conforms(uow: FakeUnitOfWork) -> UnitOfWork:
    return uow
