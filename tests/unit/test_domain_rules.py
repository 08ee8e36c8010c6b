"""The selling rules, free of I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace

from eventpro.domain.allocation import make_order, refusal_at_admission
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
    Order,
    Purchase,
    PurchaseStatus,
    Reason,
    Section,
    SectionKind,
    Value,
)
from eventpro.domain.rules import event_status, resolve_request, validate_event
from eventpro.ports import Admission, Delivery

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
EVENT = Event(
    id="evt_1",
    name="Night",
    venue="Stadium",
    starts_at=NOW + timedelta(days=1),
    sale_opens_at=NOW,
    per_buyer_limit=4,
    sections=(
        Section("Floor", 2500, 100),
        Section("A", 4000, 3, ("A1", "A2", "A3")),
        Section("B", 3000, 2, ("B1", "B2")),
    ),
    created_at=NOW,
)


def test_a_valid_event_passes_and_knows_its_sections() -> None:
    assert validate_event(EVENT) is EVENT
    assert EVENT.section("A").kind is SectionKind.RESERVED
    assert EVENT.section("Floor").kind is SectionKind.GENERAL
    assert EVENT.section_of_seat("B2").name == "B" and EVENT.capacity == 105


@pytest.mark.parametrize(
    "broken",
    [
        replace(EVENT, sections=()),
        replace(EVENT, per_buyer_limit=0),
        replace(EVENT, per_buyer_limit=101),
        replace(EVENT, sections=(Section("X", 1, 1), Section("X", 1, 1))),
        replace(EVENT, sections=(Section("X", 1, 1, ("S1",)), Section("Y", 1, 1, ("S1",)))),
        replace(EVENT, sections=(Section("X", 1, 0),)),
        replace(EVENT, sections=(Section("X", 1, 10_000_001),)),
        replace(EVENT, sections=(Section("X", -1, 1),)),
        replace(EVENT, sections=(Section("X", 1, 2, ("S1",)),)),
        replace(EVENT, sections=(Section("X\x1fY", 1, 1),)),
        replace(EVENT, sections=(Section("X", 1, 1, ("S\n1",)),)),
    ],
)
def test_invalid_events_are_refused(broken: Event) -> None:
    with pytest.raises(InvalidEvent):
        validate_event(broken)


def test_resolve_a_general_admission_request_prices_it() -> None:
    request = resolve_request(EVENT, "u1", section="Floor", seats=None, quantity=3)
    assert (request.section, request.quantity, request.amount_cents, request.seats) == (
        "Floor",
        3,
        7500,
        (),
    )


def test_resolve_named_seats_finds_their_section() -> None:
    request = resolve_request(EVENT, "u1", section=None, seats=["A3", "A1"], quantity=None)
    assert (request.section, request.quantity, request.seats) == ("A", 2, ("A3", "A1"))
    assert request.amount_cents == 8000


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"section": "Floor", "seats": ["A1"], "quantity": 1}, InvalidPurchase, "section"),
        ({"section": None, "seats": None, "quantity": 1}, InvalidPurchase, "section"),
        ({"section": "Balcony", "seats": None, "quantity": 1}, UnknownSection, "section"),
        ({"section": "Floor", "seats": None, "quantity": None}, QuantityOutOfRange, "quantity"),
        ({"section": "Floor", "seats": None, "quantity": 5}, QuantityOutOfRange, "quantity"),
        ({"section": "Floor", "seats": None, "quantity": 0}, QuantityOutOfRange, "quantity"),
        ({"section": None, "seats": ["Z1"], "quantity": None}, UnknownSeat, "seats"),
        ({"section": None, "seats": [], "quantity": None}, InvalidSeatSelection, "seats"),
        ({"section": None, "seats": ["A1", "A1"], "quantity": None}, InvalidSeatSelection, "seats"),
        ({"section": None, "seats": ["A1", "B1"], "quantity": None}, InvalidSeatSelection, "seats"),
    ],
)
def test_bad_requests_name_their_field(kwargs, error, field) -> None:
    with pytest.raises(error) as raised:
        resolve_request(EVENT, "u1", **kwargs)
    assert raised.value.field == field and raised.value.message


def test_a_domain_error_without_a_message_uses_its_docstring() -> None:
    assert UnknownSection().message == "The event has no such section."


def test_reasons_at_admission_in_order_of_precedence() -> None:
    request = resolve_request(EVENT, "b", section="Floor", seats=None, quantity=2)
    early = EVENT.sale_opens_at - timedelta(seconds=1)
    # each reason wins over the ones after it: not open, sold out, over the limit
    assert refusal_at_admission(EVENT, request, now=early, held=4, sold_out=True) is (
        Reason.SALE_NOT_OPEN
    )
    assert refusal_at_admission(EVENT, request, now=NOW, held=3, sold_out=True) is Reason.SOLD_OUT
    assert refusal_at_admission(EVENT, request, now=NOW, held=3, sold_out=False) is (
        Reason.LIMIT_EXCEEDED
    )
    assert refusal_at_admission(EVENT, request, now=NOW, held=2, sold_out=False) is None


def test_event_status_follows_the_clock_and_the_stock() -> None:
    full = {"Floor": 1, "A": 0, "B": 0}
    assert event_status(EVENT, full, NOW - timedelta(hours=1)) is EventStatus.SCHEDULED
    assert event_status(EVENT, full, NOW) is EventStatus.ON_SALE
    assert event_status(EVENT, dict.fromkeys(full, 0), NOW) is EventStatus.SOLD_OUT


def test_make_order_copies_the_request_and_the_seats_taken() -> None:
    request = resolve_request(EVENT, "u1", section="A", seats=None, quantity=2)
    order = make_order("ord_1", EVENT.id, "pur_1", request, ("A1", "A2"), NOW)
    assert (order.buyer_id, order.section, order.seats, order.amount_cents) == (
        "u1",
        "A",
        ("A1", "A2"),
        8000,
    )
    assert PurchaseStatus.CONFIRMED.is_final and not PurchaseStatus.FAILED.is_final


def every_value_class() -> list[type[Value]]:
    """Every record of the domain and the ports (they all derive from `Value`)."""
    found, todo = [], list(Value.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_every_record_is_frozen_and_a_change_makes_a_copy() -> None:
    assert {Event, Section, Purchase, Order, Admission, Delivery} <= set(every_value_class())
    assert [cls.__name__ for cls in every_value_class() if not cls.__struct_config__.frozen] == []
    with pytest.raises(AttributeError):
        EVENT.per_buyer_limit = 100  # type: ignore[misc]
    changed = replace(EVENT, per_buyer_limit=10)
    assert (changed.per_buyer_limit, EVENT.per_buyer_limit) == (10, 4)
    assert hash(EVENT) == hash(replace(changed, per_buyer_limit=4))
