"""JSON shapes of the inventory's HTTP API."""

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from shelfwise.inventory.service import MAX_STOCK_QUANTITY
from shelfwise.platform.schemas import Quantity


class StockUpdate(BaseModel):
    """Body of ``PUT /books/{book_id}/stock``."""

    quantity: Quantity


class StockAdjustment(BaseModel):
    """Body of ``POST /books/{book_id}/stock/adjustments``: copies in (a delivery, positive)
    or out (a write-off, negative)."""

    # Strict: JSON's true or "3" is not a number of copies.
    change: Annotated[StrictInt, Field(ge=-MAX_STOCK_QUANTITY, le=MAX_STOCK_QUANTITY)]


class StockRead(BaseModel):
    """A book's stock level as the API returns it."""

    book_id: int
    quantity: int
