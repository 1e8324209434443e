"""ORM models of the inventory."""

from sqlalchemy import CheckConstraint, ForeignKeyConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.platform.db import Base
from shelfwise.tenancy.models import TenantScoped


class Stock(TenantScoped, Base):
    """How many copies of one book are on hand. A book without a row has none."""

    __tablename__ = "stock"
    # The service checks this too; the constraint guards against any other writer.
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        # By table name, which keeps this model free of imports from the catalog; the tenant
        # is part of the key, so stock can only count the same tenant's book.
        ForeignKeyConstraint(["tenant_id", "book_id"], ["books.tenant_id", "books.id"]),
    )

    book_id: Mapped[int] = mapped_column(primary_key=True)
    quantity: Mapped[int]
