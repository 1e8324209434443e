"""What each API process does for the orders in the background, for every active tenant:
take up the sagas that stopped (a crash, a gateway that was down) and delete expired
idempotency keys."""

import asyncio
import logging
from datetime import timedelta

from shelfwise.orders.models import utc_now
from shelfwise.orders.repository import purge_expired_keys
from shelfwise.orders.saga import OrderSaga
from shelfwise.platform.db import Database
from shelfwise.tenancy.context import tenant_context
from shelfwise.tenancy.directory import active_tenant_ids

logger = logging.getLogger(__name__)


async def tidy_orders(database: Database, saga: OrderSaga, stale_after: timedelta) -> int:
    """One pass over every active tenant; returns how many sagas it advanced. A tenant whose
    work fails is logged and passed over: it never holds up the tenants after it."""
    async with database.session(read_only=True) as session:
        tenant_ids = await active_tenant_ids(session)
    advanced = 0
    for tenant_id in tenant_ids:
        # Each tenant in its own context: both walls apply, as in a request.
        with tenant_context(tenant_id):
            try:
                advanced += await saga.recover(stale_after)
                async with database.session() as session:
                    await purge_expired_keys(session, utc_now())
                    await session.commit()
            except Exception:
                logger.exception("order upkeep failed for a tenant")
    return advanced


async def keep_orders_tidy(
    database: Database, saga: OrderSaga, every_seconds: float, stale_after: timedelta
) -> None:
    """``tidy_orders`` every ``every_seconds`` until cancelled. Only sagas that have not moved
    for ``stale_after`` are taken: a fresh one may be running in another process."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            advanced = await tidy_orders(database, saga, stale_after)
            if advanced:
                logger.info("sagas recovered", extra={"orders": advanced})
        except Exception:
            # A database that is down is tried again on the next pass, never fatal.
            logger.exception("order upkeep failed")
