"""How the orders service is built for a request."""

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from shelfwise.catalog.dependencies import BookRepositoryDep
from shelfwise.inventory.dependencies import StockRepositoryDep
from shelfwise.orders.config import BULK_DISCOUNT
from shelfwise.orders.ports import OrderRepository
from shelfwise.orders.repository import SqlIdempotencyKeys, SqlOrderRepository
from shelfwise.orders.saga import OrderSaga
from shelfwise.orders.service import OrderService
from shelfwise.platform.dependencies import DatabaseDep, SessionDep, SettingsDep, UnitOfWorkDep
from shelfwise.tenancy.dependencies import TenantConfigDep


async def get_order_repository(session: SessionDep) -> OrderRepository:
    """Orders in the request's session."""
    return SqlOrderRepository(session)


OrderRepositoryDep = Annotated[OrderRepository, Depends(get_order_repository)]


async def get_order_service(
    books: BookRepositoryDep,
    stock: StockRepositoryDep,
    orders: OrderRepositoryDep,
    uow: UnitOfWorkDep,
    config: TenantConfigDep,
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> OrderService:
    """An OrderService whose reads and writes all share the request's session, with the
    current tenant's discount terms; its idempotency keys are claimed in sessions of their
    own."""
    keys = SqlIdempotencyKeys(
        session,
        database.session,
        ttl=timedelta(hours=settings.orders.idempotency_hours),
        lease=timedelta(seconds=settings.orders.idempotency_lease_seconds),
    )
    return OrderService(
        books,
        stock,
        orders,
        uow,
        discount_tiers=await config.get(session, BULK_DISCOUNT),
        keys=keys,
    )


OrderServiceDep = Annotated[OrderService, Depends(get_order_service)]


async def get_order_saga(request: Request) -> OrderSaga:
    """The process's order saga (one per app, on ``app.state``)."""
    saga: OrderSaga = request.app.state.order_saga
    return saga


OrderSagaDep = Annotated[OrderSaga, Depends(get_order_saga)]
