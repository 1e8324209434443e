"""ORM models of the inventory."""

from sqlalchemy import CheckConstraint, ForeignKeyConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.platform.db import Base
from shelfwise.tenancy.models import TenantScoped


class Stock(TenantScoped, Base):
    """How many copies of one book can be ordered, and how many orders hold. A book without a
    row has none.

    ``quantity`` is what can still be ordered; ``reserved`` is what orders in progress took and
    have not shipped yet (part 16's saga): those copies are still on the shelf, so the count on
    the shelf is ``quantity + reserved``.

    ``version`` counts the row's changes. The ORM adds ``AND version = <as read>`` to every
    UPDATE it makes and raises when no row matched: a read-modify-write that someone else's
    write overtook fails instead of silently undoing it (optimistic locking). Writes that
    bypass the ORM (the repository's single statements) add 1 themselves.
    """

    __tablename__ = "stock"
    # The service checks this too; the constraint guards against any other writer.
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        # By table name, which keeps this model free of imports from the catalog; the tenant
        # is part of the key, so stock can only count the same tenant's book.
        ForeignKeyConstraint(["tenant_id", "book_id"], ["books.tenant_id", "books.id"]),
    )

    book_id: Mapped[int] = mapped_column(primary_key=True)
    quantity: Mapped[int]
    reserved: Mapped[int] = mapped_column(default=0, server_default="0")
    version: Mapped[int] = mapped_column()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy's own name)
