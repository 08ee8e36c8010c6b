"""The documented shapes of the answers, for `/openapi.json`.

The answers themselves are built by `services/wire.py`; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SectionOut(BaseModel):
    name: str
    kind: str
    capacity: int
    remaining: int
    price_cents: int


class QueueOut(BaseModel):
    depth: int


class EventOut(BaseModel):
    id: str
    name: str
    venue: str
    starts_at: datetime
    sale_opens_at: datetime
    per_buyer_limit: int
    status: str
    paused: bool
    sections: list[SectionOut]
    queue: QueueOut


class PurchaseAccepted(BaseModel):
    purchase_id: str
    event_id: str
    status: str
    position: int | None
    reason: str | None
    links: dict[str, str]


class OrderSummary(BaseModel):
    order_id: str
    section: str
    seats: list[str]
    quantity: int
    amount_cents: int


class PurchaseOut(BaseModel):
    purchase_id: str
    event_id: str
    buyer_id: str
    status: str
    position: int | None
    ahead: int
    reason: str | None
    order: OrderSummary | None


class OrderOut(BaseModel):
    order_id: str
    event_id: str
    buyer_id: str
    purchase_id: str
    section: str
    seats: list[str]
    quantity: int
    amount_cents: int
    created_at: datetime


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
