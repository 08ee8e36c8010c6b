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

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)

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


def _printable(text: str) -> str:
    # shown to buyers and operators and printed on tickets: no control characters
    if not text.isprintable():
        raise ValueError("must not hold control characters")
    return text


def _whole(value: object) -> object:
    # JSON Schema's integer admits 2.0; a string or a boolean stays an error (strict)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text(value: object) -> object:
    # a moment is RFC 3339 text; pydantic would also take a number of seconds
    if not isinstance(value, str):
        raise ValueError("a moment is RFC 3339 text, e.g. 2030-06-01T19:00:00Z")
    return value


Printable = AfterValidator(_printable)
Whole = BeforeValidator(_whole)
Label = Annotated[str, Field(min_length=1, max_length=64), Printable]
BuyerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
Name = Annotated[str, Field(min_length=1, max_length=200), Printable]
Moment = Annotated[AwareDatetime, BeforeValidator(_text)]
# Ids are ours (`evt_…`, `pur_…`): letters, digits and a few marks; anything else names nothing.
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


class Strict(BaseModel):
    """A request body: unknown fields refused, and no field may be sent as null (an
    optional field is left out; the documented schema says the same)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None:
                    raise ValueError(f"{name!r} may be left out, not sent as null")
        return data


def _exactly_one_of(*groups: list[str], never: list[str] | None = None) -> ConfigDict:
    """The JSON Schema of a model validator: exactly one group of fields is given."""
    extra: dict[str, Any] = {"oneOf": [{"required": group} for group in groups]}
    if never:
        extra["not"] = {"required": never}
    return ConfigDict(extra="forbid", json_schema_extra=extra)


class SectionIn(Strict):
    model_config = _exactly_one_of(["capacity"], ["seats"])

    name: Annotated[str, Field(min_length=1, max_length=100), Printable]
    price_cents: Annotated[StrictInt, Field(ge=0, le=10**9), Whole]
    capacity: Annotated[StrictInt, Field(ge=1, le=MAX_CAPACITY), Whole] | None = None
    seats: Annotated[list[Label], Field(min_length=1, max_length=MAX_SEATS_PER_EVENT)] | None = None

    @model_validator(mode="after")
    def _capacity_or_seats(self) -> SectionIn:
        if (self.capacity is None) == (self.seats is None):
            raise ValueError("a section has either 'capacity' or 'seats', never both")
        return self


class EventIn(Strict):
    name: Name
    venue: Name
    starts_at: Moment
    sale_opens_at: Moment | None = None
    per_buyer_limit: Annotated[StrictInt, Field(ge=1, le=MAX_PER_BUYER_LIMIT), Whole] = (
        DEFAULT_PER_BUYER_LIMIT
    )
    sections: Annotated[list[SectionIn], Field(min_length=1, max_length=MAX_SECTIONS)]


class PurchaseIn(Strict):
    model_config = _exactly_one_of(["section", "quantity"], ["seats"], never=["seats", "quantity"])

    buyer_id: BuyerId
    section: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    seats: Annotated[list[Label], Field(min_length=1, max_length=MAX_PER_BUYER_LIMIT)] | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_PER_BUYER_LIMIT), Whole] | None = None


class RedriveIn(Strict):
    model_config = _exactly_one_of(["event_id"], ["purchase_ids"])

    event_id: Id | None = None
    purchase_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)] | None = None

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
