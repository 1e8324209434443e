"""ORM models of the inventory."""

from sqlalchemy import CheckConstraint, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from shelfwise.platform.db import Base


class Stock(Base):
    """How many copies of one book are on hand. A book without a row has none."""

    __tablename__ = "stock"
    # The service checks this too; the constraint guards against any other writer.
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    # Referring to the table by name keeps this model free of imports from the catalog.
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), primary_key=True)
    quantity: Mapped[int]
