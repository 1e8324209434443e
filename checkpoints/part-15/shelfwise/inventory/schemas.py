"""JSON shapes of the inventory's HTTP API."""

from pydantic import BaseModel

from shelfwise.platform.schemas import Quantity


class StockUpdate(BaseModel):
    """Body of ``PUT /books/{book_id}/stock``."""

    quantity: Quantity


class StockRead(BaseModel):
    """A book's stock level as the API returns it."""

    book_id: int
    quantity: int
