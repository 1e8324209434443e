"""ORM models of the catalog."""

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shelfwise.platform.db import Base
from shelfwise.platform.money import Money

# Column lengths, named once: the API's schemas and the CSV importer bound input by them.
NAME_LENGTH = 200
TITLE_LENGTH = 300
CATEGORY_LENGTH = 100


class Author(Base):
    """A person who wrote one or more books."""

    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed because searches match on author names.
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)

    # lazy="raise": touching an unloaded relationship is an error instead of a hidden query,
    # which in async code would fail anyway. Repositories load what callers need, explicitly.
    # viewonly: a book joins an author by setting `Book.author`; this side is for reading only,
    # so adding a book never has to touch (or load) the author's collection.
    books: Mapped[list["Book"]] = relationship(lazy="raise", viewonly=True)


class Book(Base):
    """A title in the catalog, identified by its ISBN.

    The list price is stored as an exact amount plus a currency code, never as a float.
    """

    __tablename__ = "books"
    __table_args__ = (CheckConstraint("price_amount > 0", name="price_amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    isbn: Mapped[str] = mapped_column(String(13), unique=True)
    # Indexed because searches match on titles.
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH), index=True)
    # Indexed for joins and "all books by this author".
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)
    price_amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    price_currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(CATEGORY_LENGTH))
    publication_year: Mapped[int | None]

    author: Mapped[Author] = relationship(lazy="raise")

    @property
    def price(self) -> Money:
        """The list price as ``Money``."""
        return Money(self.price_amount, self.price_currency)
