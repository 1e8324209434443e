"""How the orders service is built for a request."""

from typing import Annotated

from fastapi import Depends

from shelfwise.catalog.dependencies import BookRepositoryDep
from shelfwise.identity.dependencies import PrincipalDep
from shelfwise.inventory.dependencies import StockRepositoryDep
from shelfwise.orders.config import BULK_DISCOUNT
from shelfwise.orders.jobs import JobOrderEvents
from shelfwise.orders.ports import OrderRepository
from shelfwise.orders.repository import SqlOrderRepository
from shelfwise.orders.service import OrderService
from shelfwise.platform.dependencies import JobsDep, SessionDep, UnitOfWorkDep
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
    jobs: JobsDep,
    principal: PrincipalDep,
) -> OrderService:
    """An OrderService whose reads and writes all share the request's session, with the
    current tenant's discount terms, that sends the order jobs for the caller."""
    return OrderService(
        books,
        stock,
        orders,
        uow,
        discount_tiers=await config.get(session, BULK_DISCOUNT),
        events=JobOrderEvents(jobs, principal.user_id),
    )


OrderServiceDep = Annotated[OrderService, Depends(get_order_service)]
