"""The documented shapes of the answers, for `/openapi.json`.

The answers themselves are built by `services/wire.py`; schemathesis checks every
answer of a running server against these (tests/integration/test_openapi_contract.py).
They forbid fields they do not name, so an answer with one more field is caught too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

PurchaseStatusName = Literal["queued", "confirmed", "rejected", "failed"]
ReasonName = Literal["sold_out", "seat_taken", "limit_exceeded", "sale_not_open"]


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SectionOut(Doc):
    name: str
    kind: Literal["general", "reserved"]
    capacity: int
    remaining: int
    price_cents: int


class QueueOut(Doc):
    depth: int


class EventOut(Doc):
    id: str
    name: str
    venue: str
    starts_at: datetime
    sale_opens_at: datetime
    per_buyer_limit: int
    status: Literal["scheduled", "on_sale", "sold_out"]
    paused: bool
    sections: list[SectionOut]
    queue: QueueOut


class PurchaseLinks(Doc):
    self: str


class PurchaseAccepted(Doc):
    purchase_id: str
    event_id: str
    status: PurchaseStatusName
    position: int | None
    reason: ReasonName | None
    links: PurchaseLinks


class OrderSummary(Doc):
    order_id: str
    section: str
    seats: list[str]
    quantity: int
    amount_cents: int


class PurchaseOut(Doc):
    purchase_id: str
    event_id: str
    buyer_id: str
    status: PurchaseStatusName
    position: int | None
    ahead: int
    reason: ReasonName | None
    order: OrderSummary | None


class OrderOut(Doc):
    order_id: str
    event_id: str
    buyer_id: str
    purchase_id: str
    section: str
    seats: list[str]
    quantity: int
    amount_cents: int
    created_at: datetime


class ListedPurchase(Doc):
    purchase_id: str
    event_id: str
    buyer_id: str
    section: str
    seats: list[str]
    quantity: int
    status: PurchaseStatusName
    position: int | None
    reason: ReasonName | None
    order_id: str | None


class DeadLetterOut(Doc):
    purchase_id: str
    event_id: str
    buyer_id: str
    position: int | None
    attempts: int
    last_error: str
    failed_at: datetime


class SeatOut(Doc):
    label: str
    available: bool


class EventPage(Doc):
    items: list[EventOut]
    next_cursor: str | None


class OrderPage(Doc):
    items: list[OrderOut]
    next_cursor: str | None


class PurchasePage(Doc):
    items: list[ListedPurchase]
    next_cursor: str | None


class DeadLetterPage(Doc):
    items: list[DeadLetterOut]
    next_cursor: str | None


class SeatPage(Doc):
    event_id: str
    section: str
    items: list[SeatOut]
    next_cursor: str | None


class Redriven(Doc):
    redriven: int


class Alive(Doc):
    status: Literal["ok"]


class ReadyError(Doc):
    code: str
    message: str


class Ready(Doc):
    status: Literal["ready", "degraded", "unavailable"]
    backends: dict[str, Literal["ok", "unavailable"]]
    durability: str | None = None
    error: ReadyError | None = None


class ErrorBody(Doc):
    code: str
    message: str
    field: str | None = None


class ErrorOut(Doc):
    error: ErrorBody
