"""What crosses the wire: request bodies, validated, and answers, built as plain dicts.

The HTTP API, the CLI and the pages share these, so an event or a purchase looks the
same wherever it is shown. Requests are validated strictly (no silent coercion of "2"
to 2, unknown fields refused); answers are built by the `*_json` functions and
serialised with orjson. `api/schemas.py` documents them in `/openapi.json`, and a test
compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

from eventpro.domain.model import Order, Purchase
from eventpro.domain.rules import (
    DEFAULT_PER_BUYER_LIMIT,
    MAX_CAPACITY,
    MAX_PER_BUYER_LIMIT,
    MAX_SEATS_PER_EVENT,
    MAX_SECTIONS,
)
from eventpro.ports import DeadLetter

if TYPE_CHECKING:
    from eventpro.services.events import EventView
    from eventpro.services.purchases import PurchaseView

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


def purchase_json(view: PurchaseView) -> dict[str, object]:
    p = view.purchase
    return {
        "purchase_id": p.id,
        "event_id": p.event_id,
        "buyer_id": p.buyer_id,
        "status": p.status.value,
        "position": p.position,
        "ahead": view.ahead,
        "reason": p.reason.value if p.reason else None,
        "order": order_summary_json(view.order) if view.order else None,
    }


def listed_purchase_json(p: Purchase) -> dict[str, object]:
    return {
        "purchase_id": p.id,
        "event_id": p.event_id,
        "buyer_id": p.buyer_id,
        "section": p.request.section,
        "seats": list(p.request.seats),
        "quantity": p.request.quantity,
        "status": p.status.value,
        "position": p.position,
        "reason": p.reason.value if p.reason else None,
        "order_id": p.order_id,
    }


def dead_letter_json(letter: DeadLetter) -> dict[str, object]:
    p = letter.purchase
    return {
        "purchase_id": p.id,
        "event_id": p.event_id,
        "buyer_id": p.buyer_id,
        "position": p.position,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "failed_at": rfc3339(letter.failed_at),
    }
