"""Helpers of the conformance suite: events, admissions, draining the line, invariants."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from eventpro.domain.model import Event, Order, PurchaseRequest
from eventpro.domain.rules import resolve_request
from eventpro.ports import Admission, Clock, InventoryStore, PurchaseQueue
from eventpro.services.events import SectionSpec, create_event

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW


def new_event(
    store: InventoryStore,
    capacity: int = 10,
    seats: tuple[str, ...] = ("A1", "A2", "A3", "A4"),
    limit: int = 4,
    opens: datetime | None = None,
) -> Event:
    sections = [SectionSpec("Floor", 2500, capacity=capacity)]
    if seats:
        sections.append(SectionSpec("A", 4000, seats=seats))
    return create_event(
        store,
        FixedClock(),
        _CountingIds(),
        name="Night 1",
        venue="Stadium",
        starts_at=NOW + timedelta(days=10),
        sale_opens_at=opens,
        per_buyer_limit=limit,
        sections=sections,
    )


class _CountingIds:
    def new(self, prefix: str) -> str:
        return f"{prefix}_{next(_ids):08d}"


def request(
    event: Event,
    buyer: str,
    quantity: int = 1,
    section: str | None = "Floor",
    seats: list[str] | None = None,
) -> PurchaseRequest:
    return resolve_request(
        event,
        buyer,
        section=None if seats else section,
        seats=seats,
        quantity=None if seats else quantity,
    )


def admission(
    event: Event,
    buyer: str,
    quantity: int = 1,
    *,
    seats: list[str] | None = None,
    section: str = "Floor",
    key: str | None = None,
    body: str | None = None,
) -> Admission:
    return Admission(
        purchase_id=f"pur_{next(_ids):08d}",
        event_id=event.id,
        request=request(event, buyer, quantity, section, seats),
        per_buyer_limit=event.per_buyer_limit,
        received_at=NOW,
        idempotency_key=key,
        request_hash=body if key else None,
    )


def drain(store: InventoryStore, queue: PurchaseQueue, batch: int = 100) -> int:
    """Lease, decide and complete until the line is empty; return how many were decided."""
    decided = 0
    while deliveries := queue.lease(batch, 30, NOW):
        decisions = store.decide([d.purchase for d in deliveries], NOW)
        if decisions.emptied_sections:
            queue.mark_sold_out(deliveries[0].purchase.event_id, decisions.emptied_sections)
        queue.complete(deliveries, decisions.decisions)
        decided += len(deliveries)
    return decided


def all_orders(store: InventoryStore, event_id: str) -> list[Order]:
    orders, cursor = [], None
    while True:
        page = store.list_orders(event_id, 50, cursor)
        orders += page.items
        if page.next_cursor is None:
            return orders
        cursor = page.next_cursor


def assert_inventory_consistent(store: InventoryStore, event: Event) -> None:
    """Sold + remaining == capacity in every section, and no seat is in two orders."""
    inventory = store.get_inventory(event.id)
    assert inventory is not None
    orders = all_orders(store, event.id)
    for section in event.sections:
        sold = sum(o.quantity for o in orders if o.section == section.name)
        left = inventory.remaining[section.name]
        assert sold + left == section.capacity, (
            f"section {section.name}: capacity {section.capacity}, sold by orders {sold},"
            f" remaining {left}: {sold + left - section.capacity:+d} tickets"
        )
    seats = [label for o in orders for label in o.seats]
    twice = sorted({label for label in seats if seats.count(label) > 1})
    assert not twice, f"seats in two orders: {twice} ({len(seats)} seats sold)"
