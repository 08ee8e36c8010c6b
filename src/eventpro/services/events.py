"""Event use cases: create, look up, list, pause and resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from eventpro.domain.model import Event, EventStatus, Inventory, Section
from eventpro.domain.rules import event_status, validate_event
from eventpro.ports import Clock, IdSource, InventoryStore, Page, PurchaseQueue
from eventpro.services.cache import TtlCache
from eventpro.services.wire import EventIn


@dataclass(frozen=True, slots=True)
class SectionSpec:
    name: str
    price_cents: int
    capacity: int | None = None
    seats: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EventView:
    """An event as the API shows it: live remaining, status and queue depth."""

    inventory: Inventory
    status: EventStatus
    queue_depth: int

    @property
    def event(self) -> Event:
        return self.inventory.event


def create_event(
    store: InventoryStore,
    clock: Clock,
    ids: IdSource,
    *,
    name: str,
    venue: str,
    starts_at: datetime,
    sale_opens_at: datetime | None,
    per_buyer_limit: int,
    sections: list[SectionSpec],
) -> Event:
    """Validate and store a new event with all of its stock available."""
    now = clock.now()
    event = validate_event(
        Event(
            id=ids.new("evt"),
            name=name,
            venue=venue,
            starts_at=starts_at,
            sale_opens_at=sale_opens_at or now,
            per_buyer_limit=per_buyer_limit,
            sections=tuple(_section(spec) for spec in sections),
            created_at=now,
        )
    )
    store.create_event(event)
    return event


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


def _section(spec: SectionSpec) -> Section:
    seats = tuple(spec.seats or ())
    capacity = len(seats) if spec.seats is not None else (spec.capacity or 0)
    return Section(name=spec.name, price_cents=spec.price_cents, capacity=capacity, seats=seats)


def view_event(
    store: InventoryStore, queue: PurchaseQueue, clock: Clock, event_id: str
) -> EventView | None:
    """The event with live remaining stock, status and queue depth, or None."""
    # The line first, then the stock: a depth of 0 then means the stock read after it is
    # final (read the other way round, the last batch could land in between).
    depth = queue.depth(event_id)
    inventory = store.get_inventory(event_id)
    if inventory is None:
        return None
    return EventView(
        inventory=inventory,
        status=event_status(inventory.event, inventory.remaining, clock.now()),
        queue_depth=depth,
    )


class EventViews:
    """`view_event`, remembered for `ttl` seconds: many readers of one event at once (a
    listing, pollers, streams) cost one store read and one queue count a moment."""

    def __init__(
        self,
        store: InventoryStore,
        queue: PurchaseQueue,
        clock: Clock,
        ttl: float = 0.5,
        on_view: Callable[[EventView], None] = lambda view: None,
    ) -> None:
        self._store, self._queue, self._clock = store, queue, clock
        self._views: TtlCache[str, EventView | None] = TtlCache(ttl)
        self._on_view = on_view  # told each view read from the backends

    def get(self, event_id: str) -> EventView | None:
        return self._views.get(event_id, self._read)

    def _read(self, event_id: str) -> EventView | None:
        view = view_event(self._store, self._queue, self._clock, event_id)
        if view is not None:
            self._on_view(view)
        return view

    def forget(self, event_id: str) -> None:
        self._views.forget(event_id)


def list_events(store: InventoryStore, limit: int, cursor: str | None) -> Page[Event]:
    """A page of events, newest first."""
    return store.list_events(limit, cursor)


def set_paused(store: InventoryStore, event_id: str, paused: bool) -> bool:
    """Stop or restart admission for one event; False if the event does not exist."""
    return store.set_paused(event_id, paused)
