"""The rules of what may be sold and asked for: valid events, resolved requests, status.

Who gets tickets is `allocation.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from eventpro.domain.errors import (
    InvalidEvent,
    InvalidPurchase,
    InvalidSeatSelection,
    QuantityOutOfRange,
    UnknownSeat,
    UnknownSection,
)
from eventpro.domain.model import (
    Event,
    EventStatus,
    PurchaseRequest,
    Section,
)

MAX_SECTIONS = 100
MAX_CAPACITY = 10_000_000
MAX_SEATS_PER_EVENT = 100_000
MAX_PER_BUYER_LIMIT = 100
DEFAULT_PER_BUYER_LIMIT = 4


def validate_event(event: Event) -> Event:
    """Check an event's inventory rules; return it unchanged or raise `InvalidEvent`."""
    if not 1 <= len(event.sections) <= MAX_SECTIONS:
        raise InvalidEvent(f"an event has 1 to {MAX_SECTIONS} sections", field="sections")
    if not 1 <= event.per_buyer_limit <= MAX_PER_BUYER_LIMIT:
        raise InvalidEvent(
            f"per_buyer_limit must be 1 to {MAX_PER_BUYER_LIMIT}", field="per_buyer_limit"
        )
    names = [s.name for s in event.sections]
    if len(set(names)) != len(names):
        raise InvalidEvent("section names must be unique within the event", field="sections")
    labels = [label for s in event.sections for label in s.seats]
    if len(labels) > MAX_SEATS_PER_EVENT:
        raise InvalidEvent(f"an event has at most {MAX_SEATS_PER_EVENT} seats", field="sections")
    if len(set(labels)) != len(labels):
        raise InvalidEvent("seat labels must be unique within the event", field="sections")
    for section in event.sections:
        _validate_section(section)
    return event


def _validate_section(section: Section) -> None:
    # Names and labels are shown to buyers and printed on tickets: no control characters.
    if not section.name.isprintable() or not all(label.isprintable() for label in section.seats):
        raise InvalidEvent(
            f"section {section.name!r}: names and seat labels must be printable",
            field="sections",
        )
    if section.seats and section.capacity != len(section.seats):
        raise InvalidEvent(
            f"section {section.name!r}: a reserved section's capacity is its seat count",
            field="sections",
        )
    if not 1 <= section.capacity <= MAX_CAPACITY:
        raise InvalidEvent(
            f"section {section.name!r}: capacity must be 1 to {MAX_CAPACITY}", field="sections"
        )
    if section.price_cents < 0:
        raise InvalidEvent(f"section {section.name!r}: price_cents must be >= 0", field="sections")


def resolve_request(
    event: Event,
    buyer_id: str,
    *,
    section: str | None,
    seats: Iterable[str] | None,
    quantity: int | None,
) -> PurchaseRequest:
    """Turn what a buyer sent into a request against one section, or raise a `DomainError`."""
    if (section is None) == (seats is None):
        raise InvalidPurchase("give exactly one of 'section' and 'seats'", field="section")
    if seats is not None:
        seats = tuple(seats)
        if quantity is not None:
            raise QuantityOutOfRange(
                "with 'seats', leave 'quantity' out: it is the number of seats named",
                field="quantity",
            )
        return _resolve_named_seats(event, buyer_id, seats)
    assert section is not None
    found = event.section(section)
    if found is None:
        raise UnknownSection(f"event {event.id} has no section {section!r}", field="section")
    if quantity is None:
        raise QuantityOutOfRange("quantity is required with 'section'", field="quantity")
    _check_quantity(event, quantity)
    return PurchaseRequest(
        buyer_id=buyer_id,
        section=found.name,
        quantity=quantity,
        amount_cents=found.price_cents * quantity,
    )


def _resolve_named_seats(event: Event, buyer_id: str, seats: tuple[str, ...]) -> PurchaseRequest:
    if not seats:
        raise InvalidSeatSelection("name at least one seat", field="seats")
    if len(set(seats)) != len(seats):
        raise InvalidSeatSelection("a seat is named twice", field="seats")
    sections = set()
    for label in seats:
        found = event.section_of_seat(label)
        if found is None:
            raise UnknownSeat(f"event {event.id} has no seat {label!r}", field="seats")
        sections.add(found)
    if len(sections) != 1:
        raise InvalidSeatSelection("all named seats must be in one section", field="seats")
    _check_quantity(event, len(seats), field="seats")
    section = sections.pop()
    return PurchaseRequest(
        buyer_id=buyer_id,
        section=section.name,
        quantity=len(seats),
        seats=seats,
        amount_cents=section.price_cents * len(seats),
    )


def _check_quantity(event: Event, quantity: int, field: str = "quantity") -> None:
    if not 1 <= quantity <= event.per_buyer_limit:
        raise QuantityOutOfRange(
            f"quantity must be 1 to {event.per_buyer_limit} for this event", field=field
        )


def event_status(event: Event, remaining: Mapping[str, int], now: datetime) -> EventStatus:
    if remaining and all(v == 0 for v in remaining.values()):
        return EventStatus.SOLD_OUT
    if now < event.sale_opens_at:
        return EventStatus.SCHEDULED
    return EventStatus.ON_SALE
