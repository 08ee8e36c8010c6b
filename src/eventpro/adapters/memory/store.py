"""`MemoryInventoryStore`: the reference model of the inventory store, under one lock.

Each section's stock is a `SectionStock` that `allocate_batch` (the domain's rule) takes
from directly; the lock makes a batch atomic.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from msgspec.structs import replace

from eventpro.adapters.paging import page_after
from eventpro.domain.allocation import SectionStock, allocate_batch
from eventpro.domain.model import DecidedBatch, Decision, Event, Inventory, Order, Purchase
from eventpro.ports import Conflict, IdSource, InventoryStore, Page


@dataclass
class _Stock:
    event: Event
    seq: int
    sections: dict[str, SectionStock]


def _stock_of(event: Event, seq: int) -> _Stock:
    sections = {
        s.name: SectionStock(
            s.capacity, {label: i for i, label in enumerate(s.seats)} if s.seats else None
        )
        for s in event.sections
    }
    return _Stock(event, seq, sections)


class MemoryInventoryStore(InventoryStore):
    def __init__(self, ids: IdSource | None = None) -> None:
        self._ids = ids or IdSource()
        self._lock = threading.Lock()
        self._stock: dict[str, _Stock] = {}
        self._seq = itertools.count(1)
        self._decisions: dict[str, Decision] = {}
        self._orders: dict[str, tuple[int, Order]] = {}

    def create_event(self, event: Event) -> None:
        with self._lock:
            if event.id in self._stock:
                raise Conflict(f"event {event.id} exists")
            self._stock[event.id] = _stock_of(event, next(self._seq))

    def get_inventory(self, event_id: str) -> Inventory | None:
        with self._lock:
            stock = self._stock.get(event_id)
            if stock is None:
                return None
            return Inventory(stock.event, {n: s.remaining for n, s in stock.sections.items()})

    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        with self._lock:
            # Newest first: number the events backwards so the cursor still grows.
            top = 10**17  # a cursor is at most 18 digits
            items = sorted((top - s.seq, s.event) for s in self._stock.values())
        return page_after(items, limit, cursor)

    def set_paused(self, event_id: str, paused: bool) -> bool:
        with self._lock:
            stock = self._stock.get(event_id)
            if stock is None:
                return False
            stock.event = replace(stock.event, paused=paused)
            return True

    def seat_map(self, event_id: str, section: str) -> list[tuple[str, bool]]:
        with self._lock:
            stock = self._stock[event_id]
            found = stock.event.section(section)
            free = stock.sections[section].free if found else None
            return [(label, label in (free or {})) for label in (found.seats if found else ())]

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        with self._lock:
            new = [p for p in purchases if p.id not in self._decisions]
            stocks = {
                (p.event_id, p.request.section): self._stock[p.event_id].sections[p.request.section]
                for p in new
            }
            batch = allocate_batch(new, stocks, self._order_ids(len(new)), now)
            for decision in batch.decisions:
                self._remember(decision)
            return DecidedBatch([self._decisions[p.id] for p in purchases], batch.emptied_sections)

    def _order_ids(self, count: int) -> list[str]:
        return [self._ids.new("ord") for _ in range(count)]

    def _remember(self, decision: Decision) -> None:
        self._decisions[decision.purchase_id] = decision
        if decision.order is not None:
            self._orders[decision.order.id] = (next(self._seq), decision.order)

    def get_order(self, order_id: str) -> Order | None:
        with self._lock:
            found = self._orders.get(order_id)
            return found[1] if found else None

    def list_orders(self, event_id: str, limit: int, cursor: str | None) -> Page[Order]:
        with self._lock:
            items = sorted((seq, o) for seq, o in self._orders.values() if o.event_id == event_id)
        return page_after(items, limit, cursor)

    def ping(self) -> None:
        return None
