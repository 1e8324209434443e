"""SQLAlchemy adapters for the orders ports: orders, and idempotency keys."""

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shelfwise.inventory.repository import OpenSession
from shelfwise.orders.errors import IdempotencyKeyInUseError, IdempotencyKeyReusedError
from shelfwise.orders.models import IdempotencyRecord, Order, utc_now
from shelfwise.orders.ports import Claim, StoredResponse
from shelfwise.tenancy.context import current_tenant_id

if TYPE_CHECKING:
    from shelfwise.orders.ports import IdempotencyKeys, OrderRepository

logger = logging.getLogger(__name__)


class SqlOrderRepository:
    """Orders in a relational database; flushes but never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, order: Order) -> Order:
        self._session.add(order)  # the items cascade with it
        await self._session.flush()  # assigns the ids
        return order

    async def get(self, order_id: int) -> Order | None:
        # selectinload: one extra query for all items, instead of repeating order columns per
        # item as a join would.
        return await self._session.scalar(
            select(Order).options(selectinload(Order.items)).where(Order.id == order_id)
        )


class SqlIdempotencyKeys:
    """Idempotency keys (the IETF httpapi idempotency-key draft) in a relational database.

    A record goes through two states:

    1. **claimed**: ``claim()`` inserts it, in a short transaction of its own, with a token and
       a lease. A second attempt with the key meanwhile is answered 409 at once.
    2. **completed**: ``complete()`` stores the response in the order's own transaction, so the
       order and its record are committed together or not at all.

    A claimed key whose attempt died is taken over when its lease ends: nothing was committed
    for it, since completing is part of the order's commit. A failed attempt releases its key;
    a key expires after ``ttl`` and may then name a new request. Keys are per tenant: the
    primary key is ``(tenant_id, key)``.

    ``session`` is the order's (``complete`` writes in its transaction); ``open_session`` opens
    the short ones that claim and release.
    """

    def __init__(
        self,
        session: AsyncSession,
        open_session: OpenSession,
        *,
        ttl: timedelta,
        lease: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._session = session
        self._open_session = open_session
        self._ttl = ttl
        self._lease = lease
        self._clock = clock

    async def claim(self, key: str, request_fingerprint: str) -> Claim | StoredResponse:
        """Claim ``key`` for this attempt, or return the response stored for it.

        Raises ``IdempotencyKeyReusedError`` (another body) and ``IdempotencyKeyInUseError``
        (an attempt with it is in flight).
        """
        now, token = self._clock(), secrets.token_hex(16)
        fresh = {
            "fingerprint": request_fingerprint,
            "claim": token,
            "claimed_until": now + self._lease,
            "status_code": None,
            "response": None,
            "expires_at": now + self._ttl,
        }
        async with self._open_session() as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            claimed = await session.scalar(
                insert(IdempotencyRecord)
                .values(tenant_id=current_tenant_id(), key=key, **fresh)
                .on_conflict_do_nothing()
                .returning(IdempotencyRecord.key)
            )
            if claimed is None:  # the key exists: expired (a new request may have it) or not
                claimed = await session.scalar(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.key == key, IdempotencyRecord.expires_at <= now)
                    .values(**fresh)
                    .returning(IdempotencyRecord.key)
                )
            if claimed is None:
                stored = await self._existing(session, key, request_fingerprint, token, now)
                if isinstance(stored, StoredResponse):
                    return stored
            await session.commit()
        return Claim(key, token)

    async def _existing(
        self, session: AsyncSession, key: str, request_fingerprint: str, token: str, now: datetime
    ) -> StoredResponse | None:
        """The stored response of a live key; ``None`` after taking over a lapsed claim."""
        row = (
            await session.execute(
                select(
                    IdempotencyRecord.fingerprint,
                    IdempotencyRecord.claim,
                    IdempotencyRecord.status_code,
                    IdempotencyRecord.response,
                    # Compared by the database: SQLite hands datetimes back without their zone.
                    (IdempotencyRecord.claimed_until <= now).label("lapsed"),
                ).where(IdempotencyRecord.key == key)
            )
        ).one_or_none()
        if row is None:  # released a moment ago: this attempt may retry
            raise IdempotencyKeyInUseError(key)
        if row.fingerprint != request_fingerprint:
            raise IdempotencyKeyReusedError(key)
        if row.status_code is not None and row.response is not None:
            return StoredResponse(row.status_code, row.response)
        if not row.lapsed:
            raise IdempotencyKeyInUseError(key)
        # Its attempt died without committing (completing is part of the order's commit).
        taken = await session.scalar(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key, IdempotencyRecord.claim == row.claim)
            .values(claim=token, claimed_until=now + self._lease)
            .returning(IdempotencyRecord.key)
        )
        if taken is None:  # another attempt took it over first
            raise IdempotencyKeyInUseError(key)
        return None

    async def complete(self, claim: Claim, response: StoredResponse) -> None:
        """Store ``response`` for the claimed key, in the order's transaction (not committed
        here). Raises ``IdempotencyKeyInUseError`` if the claim was lost to a takeover."""
        completed = await self._session.scalar(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == claim.key, IdempotencyRecord.claim == claim.token)
            .values(claim=None, status_code=response.status_code, response=response.body)
            .returning(IdempotencyRecord.key)
        )
        if completed is None:
            raise IdempotencyKeyInUseError(claim.key)

    async def release(self, claim: Claim) -> None:
        """Give the key up after a failed attempt, so that a retry may try again. Best effort:
        if this fails too, the lease's end frees the key."""
        try:
            async with self._open_session() as session:
                await session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.key == claim.key, IdempotencyRecord.claim == claim.token
                    )
                )
                await session.commit()
        except Exception:
            logger.warning("idempotency key not released", exc_info=True)


# Keys deleted per tenant per upkeep pass: a backlog goes over passes, in short transactions.
PURGE_BATCH = 1000


async def purge_expired_keys(session: AsyncSession, now: datetime) -> int:
    """Delete up to ``PURGE_BATCH`` of the current tenant's expired keys; return how many
    (committed by the caller)."""
    expired = (
        select(IdempotencyRecord.key)
        .where(IdempotencyRecord.expires_at <= now)
        .limit(PURGE_BATCH)
        .scalar_subquery()
    )
    deleted = await session.scalars(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.key.in_(expired))
        .returning(IdempotencyRecord.key)
    )
    return len(deleted.all())


if TYPE_CHECKING:
    # mypy proves the adapters satisfy the ports; nothing runs at runtime.
    def _conforms(session: AsyncSession) -> tuple[OrderRepository, IdempotencyKeys]:
        keys = SqlIdempotencyKeys(session, lambda: session, ttl=timedelta(), lease=timedelta())
        return SqlOrderRepository(session), keys
