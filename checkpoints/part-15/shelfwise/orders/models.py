"""ORM models of orders."""

from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shelfwise.platform.db import Base
from shelfwise.platform.money import Money
from shelfwise.tenancy.models import TenantScoped


class OrderStatus(StrEnum):
    """Where an order is in its life. Payment, shipping and cancellation arrive in later parts."""

    PLACED = "placed"


class Order(TenantScoped, Base):
    """A bookstore's order: what it bought, at which prices, for what total.

    Prices and the discount are copied onto the order when it is placed, so a later change to a
    list price never changes what an existing order cost.
    """

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored as the enum's value ("placed"), in a plain string column that new statuses can
    # extend without altering a database enum type.
    status: Mapped[OrderStatus] = mapped_column(
        Enum(
            OrderStatus,
            native_enum=False,
            length=20,
            values_callable=lambda statuses: [status.value for status in statuses],
        )
    )
    total_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    total_currency: Mapped[str] = mapped_column(String(3))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))

    # lazy="raise", as everywhere: the repository loads items when a caller needs them.
    items: Mapped[list["OrderItem"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="OrderItem.id"
    )

    @property
    def total(self) -> Money:
        """What the order costs, after the discount."""
        return Money(self.total_amount, self.total_currency)


class OrderItem(TenantScoped, Base):
    """One line of an order: copies of one book at the unit price of the day."""

    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("order_id", "book_id"),
        # The order and the book are both the item's own tenant's.
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"]),
        # By table name, like Stock: orders refer to books without importing the catalog.
        ForeignKeyConstraint(["tenant_id", "book_id"], ["books.tenant_id", "books.id"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(index=True)
    book_id: Mapped[int] = mapped_column(index=True)
    quantity: Mapped[int]
    unit_price_amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    unit_price_currency: Mapped[str] = mapped_column(String(3))
    line_total_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    @property
    def unit_price(self) -> Money:
        """The price of one copy when the order was placed."""
        return Money(self.unit_price_amount, self.unit_price_currency)

    @property
    def line_total(self) -> Money:
        """Unit price times quantity, before the order's discount."""
        return Money(self.line_total_amount, self.unit_price_currency)


class BookSale(TenantScoped, Base):
    """Copies of one book that one order sold: the analytics job's record, kept once per order
    and book, so that running the job again adds nothing."""

    __tablename__ = "book_sales"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"]),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    order_id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(primary_key=True)
    copies: Mapped[int]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
