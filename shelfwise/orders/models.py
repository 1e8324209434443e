"""ORM models of orders."""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shelfwise.platform.db import Base
from shelfwise.platform.money import Money
from shelfwise.tenancy.models import TenantScoped


class OrderStatus(StrEnum):
    """Where an order is in its saga: reserve stock, charge, ship, confirm (part 16).

    ``pending``: the stock is reserved (taken off the shelf) and nothing is charged yet;
    ``paid``: charged; ``shipped``: handed to the carrier; ``confirmed``: done.
    ``compensating``: a step failed for good after the charge, so it is being undone (refund,
    stock back); ``cancelled``: done, with nothing charged and the stock back.
    """

    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    CONFIRMED = "confirmed"
    COMPENSATING = "compensating"
    CANCELLED = "cancelled"


# The saga is over for these; every other status has a next step.
FINAL_STATUSES = frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED})


def utc_now() -> datetime:
    """Now, in UTC: what ``updated_at`` records."""
    return datetime.now(UTC)


class Order(TenantScoped, Base):
    """A bookstore's order: what it bought, at which prices, for what total.

    Prices and the discount are copied onto the order when it is placed, so a later change to a
    list price never changes what an existing order cost.

    The order is also its saga's state: each step changes ``status`` (and records what the
    step produced) in a transaction of its own, under the ``version`` the step read, so two
    processes advancing the same order cannot both move it (optimistic locking, as ``Stock``).
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        # Recovery's question, per tenant: which orders in these statuses stopped moving?
        Index("ix_orders_saga_recovery", "tenant_id", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored as the enum's value ("pending"), in a plain string column that new statuses can
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
    # Who placed it (the confirmation's addressee), as a plain id: users are not tenant-scoped.
    placed_by: Mapped[int | None]
    payment_id: Mapped[str | None] = mapped_column(String(64))
    refund_id: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    # When a step last moved it: recovery looks for sagas that stopped moving.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, onupdate=utc_now
    )
    version: Mapped[int] = mapped_column()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy's own name)

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


# The idempotency-key draft leaves the length to the server; 255 holds a UUID many times over.
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class IdempotencyRecord(TenantScoped, Base):
    """One idempotency key of one tenant: what request it named and, once done, its answer."""

    __tablename__ = "idempotency_records"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_IDEMPOTENCY_KEY_LENGTH), primary_key=True)
    # SHA-256 of the request's body, as parsed: the same key with another body is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The token of the attempt working on it; None once the response is stored.
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None]
    response: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
