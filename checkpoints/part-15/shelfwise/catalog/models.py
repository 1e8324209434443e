"""ORM models of the catalog."""

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shelfwise.platform.db import Base
from shelfwise.platform.money import Money
from shelfwise.tenancy.models import TenantScoped

# Column lengths, named once: the API's schemas and the CSV importer bound input by them.
NAME_LENGTH = 200
TITLE_LENGTH = 300
CATEGORY_LENGTH = 100


class Author(TenantScoped, Base):
    """A person who wrote one or more books."""

    __tablename__ = "authors"
    # What other tenant-scoped tables refer to: a reference carries the tenant with the id.
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed because searches match on author names.
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)

    # lazy="raise": touching an unloaded relationship is an error instead of a hidden query,
    # which in async code would fail anyway. Repositories load what callers need, explicitly.
    # viewonly: a book joins an author by setting `Book.author`; this side is for reading only,
    # so adding a book never has to touch (or load) the author's collection.
    books: Mapped[list["Book"]] = relationship(lazy="raise", viewonly=True)


class Book(TenantScoped, Base):
    """A title in the catalog, identified by its ISBN.

    The list price is stored as an exact amount plus a currency code, never as a float.
    """

    __tablename__ = "books"
    __table_args__ = (
        CheckConstraint("price_amount > 0", name="price_amount_positive"),
        # Two stores may both stock a book: an ISBN is unique within a tenant, not globally.
        UniqueConstraint("tenant_id", "isbn"),
        UniqueConstraint("tenant_id", "id"),
        # The author must be the same tenant's: the database refuses another tenant's author.
        ForeignKeyConstraint(["tenant_id", "author_id"], ["authors.tenant_id", "authors.id"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    isbn: Mapped[str] = mapped_column(String(13))
    # Indexed because searches match on titles.
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH), index=True)
    # Indexed for joins and "all books by this author".
    author_id: Mapped[int] = mapped_column(index=True)
    price_amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    price_currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(CATEGORY_LENGTH))
    publication_year: Mapped[int | None]

    author: Mapped[Author] = relationship(lazy="raise")

    @property
    def price(self) -> Money:
        """The list price as ``Money``."""
        return Money(self.price_amount, self.price_currency)
