"""Request and response bodies of the public contract (`docs/http-api.md`).

Requests are validated strictly (no silent coercion of "2" to 2, unknown fields refused).
Responses are built as plain dicts by the `*_json` functions and serialised with orjson;
the response models document them in `/openapi.json`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

from eventpro.domain.model import Event, Order, Purchase
from eventpro.domain.rules import (
    DEFAULT_PER_BUYER_LIMIT,
    MAX_CAPACITY,
    MAX_PER_BUYER_LIMIT,
    MAX_SEATS_PER_EVENT,
    MAX_SECTIONS,
)
from eventpro.ports import Clock, IdSource, InventoryStore
from eventpro.services.events import EventView, SectionSpec, create_event

Label = Annotated[str, Field(min_length=1, max_length=64)]
BuyerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SectionIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    price_cents: Annotated[StrictInt, Field(ge=0, le=10**9)]
    capacity: Annotated[StrictInt, Field(ge=1, le=MAX_CAPACITY)] | None = None
    seats: Annotated[list[Label], Field(min_length=1, max_length=MAX_SEATS_PER_EVENT)] | None = None

    @model_validator(mode="after")
    def _capacity_or_seats(self) -> SectionIn:
        if (self.capacity is None) == (self.seats is None):
            raise ValueError("a section has either 'capacity' or 'seats', never both")
        return self


class EventIn(Strict):
    name: Name
    venue: Name
    starts_at: AwareDatetime
    sale_opens_at: AwareDatetime | None = None
    per_buyer_limit: Annotated[StrictInt, Field(ge=1, le=MAX_PER_BUYER_LIMIT)] = (
        DEFAULT_PER_BUYER_LIMIT
    )
    sections: Annotated[list[SectionIn], Field(min_length=1, max_length=MAX_SECTIONS)]


def create_event_from(body: EventIn, store: InventoryStore, clock: Clock, ids: IdSource) -> Event:
    """Create the event a validated body describes (shared by the API and `event create`)."""
    return create_event(
        store,
        clock,
        ids,
        name=body.name,
        venue=body.venue,
        starts_at=body.starts_at,
        sale_opens_at=body.sale_opens_at,
        per_buyer_limit=body.per_buyer_limit,
        sections=[
            SectionSpec(
                s.name, s.price_cents, s.capacity, tuple(s.seats) if s.seats is not None else None
            )
            for s in body.sections
        ],
    )


class PurchaseIn(Strict):
    buyer_id: BuyerId
    section: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    seats: Annotated[list[Label], Field(min_length=1, max_length=MAX_PER_BUYER_LIMIT)] | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_PER_BUYER_LIMIT)] | None = None


class RedriveIn(Strict):
    event_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    purchase_ids: Annotated[list[Label], Field(min_length=1, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> RedriveIn:
        if (self.event_id is None) == (self.purchase_ids is None):
            raise ValueError("give exactly one of 'event_id' and 'purchase_ids'")
        return self


# -- responses (documentation models; the JSON is built by the functions below) ---------


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


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_json(view: EventView) -> dict[str, Any]:
    event = view.event
    return {
        "id": event.id,
        "name": event.name,
        "venue": event.venue,
        "starts_at": rfc3339(event.starts_at),
        "sale_opens_at": rfc3339(event.sale_opens_at),
        "per_buyer_limit": event.per_buyer_limit,
        "status": view.status.value,
        "paused": event.paused,
        "sections": [
            {
                "name": s.name,
                "kind": s.kind.value,
                "capacity": s.capacity,
                "remaining": view.inventory.remaining.get(s.name, 0),
                "price_cents": s.price_cents,
            }
            for s in event.sections
        ],
        "queue": {"depth": view.queue_depth},
    }


def accepted_json(purchase: Purchase) -> dict[str, Any]:
    return {
        "purchase_id": purchase.id,
        "event_id": purchase.event_id,
        "status": purchase.status.value,
        "position": purchase.position,
        "reason": purchase.reason.value if purchase.reason else None,
        "links": {"self": f"/v1/purchases/{purchase.id}"},
    }


def order_summary_json(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "section": order.section,
        "seats": list(order.seats),
        "quantity": order.quantity,
        "amount_cents": order.amount_cents,
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "event_id": order.event_id,
        "buyer_id": order.buyer_id,
        "purchase_id": order.purchase_id,
        "section": order.section,
        "seats": list(order.seats),
        "quantity": order.quantity,
        "amount_cents": order.amount_cents,
        "created_at": rfc3339(order.created_at),
    }
