"""The in-memory adapters: the reference model of both ports, guarded by one lock each.

`MemoryInventoryStore` and `MemoryQueue` are what the contract suite and the Hypothesis
model test compare every other adapter with. `memory+unsafe://` builds the deliberately
broken pair used only as a negative control: a store that reads, pauses and writes back
(the incident's read-then-write), and a queue that lets many batches of one event be in
flight at once, so that concurrent workers race.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

from eventpro.domain.model import (
    DecidedBatch,
    Decision,
    Event,
    Inventory,
    Order,
    Purchase,
    PurchaseStatus,
    Reason,
)
from eventpro.domain.rules import make_order
from eventpro.ports import (
    Admission,
    Admitted,
    Conflict,
    DeadLetter,
    Delivery,
    IdSource,
    InventoryStore,
    Page,
    PurchaseQueue,
)

T = TypeVar("T")


def page_after(items: list[tuple[int, T]], limit: int, cursor: str | None) -> Page[T]:
    """A page of (sequence, item) pairs after the cursor's sequence number."""
    after = _cursor_value(cursor)
    chosen = [pair for pair in items if pair[0] > after][: limit + 1]
    more = len(chosen) > limit
    chosen = chosen[:limit]
    return Page([item for _, item in chosen], str(chosen[-1][0]) if more else None)


def _cursor_value(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(cursor)


@dataclass
class _Stock:
    event: Event
    seq: int
    remaining: dict[str, int]
    seat_owner: dict[str, str | None]  # label -> order id


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
            self._stock[event.id] = _Stock(
                event=event,
                seq=next(self._seq),
                remaining={s.name: s.capacity for s in event.sections},
                seat_owner={label: None for s in event.sections for label in s.seats},
            )

    def get_inventory(self, event_id: str) -> Inventory | None:
        with self._lock:
            stock = self._stock.get(event_id)
            return Inventory(stock.event, dict(stock.remaining)) if stock else None

    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        with self._lock:
            # Newest first: number the events backwards so the cursor still grows.
            top = 1 << 62
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
            labels = found.seats if found else ()
            return [(label, stock.seat_owner[label] is None) for label in labels]

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        with self._lock:
            decisions, emptied = [], set()
            for purchase in purchases:
                known = self._decisions.get(purchase.id)
                if known is None:
                    known = self._take(purchase, now)
                    self._remember(known)
                    stock = self._stock[purchase.event_id]
                    if stock.remaining[purchase.request.section] == 0:
                        emptied.add(purchase.request.section)
                decisions.append(known)
            return DecidedBatch(decisions, emptied)

    def _remember(self, decision: Decision) -> None:
        self._decisions[decision.purchase_id] = decision
        if decision.order is not None:
            self._orders[decision.order.id] = (next(self._seq), decision.order)

    def _take(self, purchase: Purchase, now: datetime) -> Decision:
        stock = self._stock[purchase.event_id]
        request = purchase.request
        section = stock.event.section(request.section)
        assert section is not None
        if request.seats:
            labels = sorted(request.seats, key=section.seats.index)  # in the section's order
            if any(stock.seat_owner[label] is not None for label in labels):
                return Decision(purchase.id, PurchaseStatus.REJECTED, Reason.SEAT_TAKEN)
        elif section.seats:
            free = [label for label in section.seats if stock.seat_owner[label] is None]
            labels = free[: request.quantity]
        else:
            labels = []
        if stock.remaining[section.name] < request.quantity:
            return Decision(purchase.id, PurchaseStatus.REJECTED, Reason.SOLD_OUT)
        order = make_order(
            self._ids.new("ord"), purchase.event_id, purchase.id, request, tuple(labels), now
        )
        stock.remaining[section.name] -= request.quantity
        for label in labels:
            stock.seat_owner[label] = order.id
        return Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order)

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


class UnsafeMemoryInventoryStore(MemoryInventoryStore):
    """DELIBERATELY BROKEN: reads `remaining`, pauses, then writes back a computed value.

    This is the incident's read-then-write, kept only so that the race tests can prove
    they catch an oversell. Never use it for anything else.
    """

    pause_seconds = 0.002

    def _take(self, purchase: Purchase, now: datetime) -> Decision:
        stock = self._stock[purchase.event_id]
        request = purchase.request
        seen = stock.remaining[request.section]
        self._lock.release()  # let other threads read the same stale value
        try:
            time.sleep(self.pause_seconds)
        finally:
            self._lock.acquire()
        if seen < request.quantity:
            return Decision(purchase.id, PurchaseStatus.REJECTED, Reason.SOLD_OUT)
        order = make_order(
            self._ids.new("ord"), purchase.event_id, purchase.id, request, request.seats, now
        )
        stock.remaining[request.section] = seen - request.quantity
        for label in request.seats:
            stock.seat_owner[label] = order.id
        return Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order)


@dataclass
class _Entry:
    purchase: Purchase
    attempts: int = 0
    lease_id: str | None = None
    dead: bool = False
    last_error: str = ""
    failed_at: datetime | None = None


@dataclass
class _Line:
    next_position: int = 1
    entries: dict[int, _Entry] = field(default_factory=dict)  # position -> entry
    lease_id: str | None = None
    leased_until: float = 0.0
    last_leased: float = 0.0
    leased_through: int = 0  # the last position of the current lease's batch
    sold_out: set[str] = field(default_factory=set)


class MemoryQueue(PurchaseQueue):
    def __init__(self, ids: IdSource | None = None) -> None:
        self._ids = ids or IdSource()
        self._lock = threading.Lock()
        self._lines: dict[str, _Line] = {}
        self._log: dict[str, tuple[int, Purchase]] = {}  # purchase id -> (seq, purchase)
        self._keys: dict[tuple[str, str], str] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._seq = itertools.count(1)

    def _line(self, event_id: str) -> _Line:
        return self._lines.setdefault(event_id, _Line())

    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        with self._lock:
            return [self._admit(a) for a in admissions]

    def _admit(self, a: Admission) -> Admitted:
        if a.idempotency_key is not None:
            earlier_id = self._keys.get((a.event_id, a.idempotency_key))
            if earlier_id is not None:
                earlier = self._log[earlier_id][1]
                mismatch = earlier.request_hash != a.request_hash
                return Admitted(earlier, replayed=not mismatch, key_mismatch=mismatch)
        line = self._line(a.event_id)
        reason = a.rejected_for or self._reason(a, line)
        position = None
        if reason is None:
            position = line.next_position
            line.next_position += 1
        purchase = Purchase(
            id=a.purchase_id,
            event_id=a.event_id,
            request=a.request,
            status=PurchaseStatus.REJECTED if reason else PurchaseStatus.QUEUED,
            position=position,
            reason=reason,
            created_at=a.received_at,
            idempotency_key=a.idempotency_key,
            request_hash=a.request_hash,
        )
        self._log[purchase.id] = (next(self._seq), purchase)
        if position is not None:
            line.entries[position] = _Entry(purchase)
        if a.idempotency_key is not None:
            self._keys[(a.event_id, a.idempotency_key)] = purchase.id
        return Admitted(purchase)

    def _reason(self, a: Admission, line: _Line) -> Reason | None:
        if a.request.section in line.sold_out:
            return Reason.SOLD_OUT
        key = (a.event_id, a.request.buyer_id)
        held = self._held.get(key, 0)
        if held + a.request.quantity > a.per_buyer_limit:
            return Reason.LIMIT_EXCEEDED
        self._held[key] = held + a.request.quantity
        return None

    def _next_event(self, clock: float) -> str | None:
        ready = [
            (line.last_leased, event_id)
            for event_id, line in self._lines.items()
            if line.leased_until <= clock and any(not e.dead for e in line.entries.values())
        ]
        return min(ready)[1] if ready else None

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        until = now.timestamp() + visibility_timeout
        with self._lock:
            if after is not None:
                return self._continue(after, max_items, until)
            event_id = self._next_event(now.timestamp())
            if event_id is None:
                return []
            line = self._lines[event_id]
            line.last_leased = time.monotonic()
            chosen = [line.entries[p] for p in sorted(line.entries) if not line.entries[p].dead]
            return self._take(line, chosen[:max_items], until)

    def _continue(self, after: str, max_items: int, until: float) -> list[Delivery]:
        line = next((line for line in self._lines.values() if line.lease_id == after), None)
        if line is None:
            return []
        entries = line.entries
        if any(
            e.lease_id != after and not e.dead
            for p, e in entries.items()
            if p <= line.leased_through
        ):
            return []
        following = [p for p in sorted(entries) if p > line.leased_through and not entries[p].dead]
        chosen = [entries[p] for p in following[:max_items]]
        return self._take(line, chosen, until) if chosen else []

    def _take(self, line: _Line, chosen: list[_Entry], until: float) -> list[Delivery]:
        """Lease `chosen` (in position order) as the line's current lease."""
        lease_id = self._ids.new("lease")
        line.lease_id, line.leased_until = lease_id, until
        deliveries = []
        for entry in chosen:
            entry.attempts += 1
            entry.lease_id = lease_id
            deliveries.append(Delivery(entry.purchase, entry.attempts, lease_id))
        if chosen:
            assert chosen[-1].purchase.position is not None
            line.leased_through = chosen[-1].purchase.position
        return deliveries

    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        by_id = {d.purchase_id: d for d in decisions}
        with self._lock:
            for delivery in deliveries:
                self._complete(delivery.purchase, by_id[delivery.purchase.id])
            if deliveries:
                self._release_if_done(deliveries[0])

    def _complete(self, purchase: Purchase, decision: Decision) -> None:
        line = self._line(purchase.event_id)
        assert purchase.position is not None
        entry = line.entries.get(purchase.position)
        if entry is None or entry.purchase.id != purchase.id:
            return  # completed before
        del line.entries[purchase.position]
        seq, logged = self._log[purchase.id]
        self._log[purchase.id] = (
            seq,
            replace(
                logged,
                status=decision.status,
                reason=decision.reason,
                order_id=decision.order.id if decision.order else None,
            ),
        )
        if decision.status is PurchaseStatus.REJECTED:
            self._held[(purchase.event_id, purchase.buyer_id)] -= purchase.request.quantity

    def _release_if_done(self, delivery: Delivery) -> None:
        line = self._line(delivery.purchase.event_id)
        if line.lease_id != delivery.lease_id:
            return
        if not any(e.lease_id == delivery.lease_id and not e.dead for e in line.entries.values()):
            line.lease_id, line.leased_until = None, 0.0

    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        purchase = delivery.purchase
        with self._lock:
            line = self._line(purchase.event_id)
            assert purchase.position is not None
            entry = line.entries.get(purchase.position)
            moved = False
            if entry is not None and not entry.dead:
                entry.lease_id, entry.last_error = None, error
                if delivery.attempt >= max_attempts:
                    entry.dead, entry.failed_at, moved = True, now, True
                    self._set_status(purchase.id, PurchaseStatus.FAILED)
            self._release_if_done(delivery)
            return moved

    def _set_status(self, purchase_id: str, status: PurchaseStatus) -> None:
        seq, logged = self._log[purchase_id]
        self._log[purchase_id] = (seq, replace(logged, status=status))

    def mark_sold_out(self, event_id: str, sections: set[str]) -> None:
        with self._lock:
            self._line(event_id).sold_out |= sections

    def get_purchase(self, purchase_id: str) -> Purchase | None:
        with self._lock:
            found = self._log.get(purchase_id)
            return found[1] if found else None

    def ahead(self, purchase: Purchase) -> int:
        if purchase.position is None:
            return 0
        with self._lock:
            line = self._line(purchase.event_id)
            return sum(1 for p in line.entries if p < purchase.position)

    def depth(self, event_id: str) -> int:
        with self._lock:
            line = self._lines.get(event_id)
            return len(line.entries) if line else 0

    def list_purchases(
        self, event_id: str, status: PurchaseStatus | None, limit: int, cursor: str | None
    ) -> Page[Purchase]:
        with self._lock:
            items = sorted(
                (seq, p)
                for seq, p in self._log.values()
                if p.event_id == event_id and (status is None or p.status is status)
            )
        return page_after(items, limit, cursor)

    def dead_letters(
        self, event_id: str | None, limit: int, cursor: str | None
    ) -> Page[DeadLetter]:
        with self._lock:
            items = sorted(
                (
                    self._log[e.purchase.id][0],
                    DeadLetter(self._log[e.purchase.id][1], e.attempts, e.last_error, e.failed_at),
                )
                for eid, line in self._lines.items()
                if event_id is None or eid == event_id
                for e in line.entries.values()
                if e.dead and e.failed_at is not None
            )
        return page_after(items, limit, cursor)

    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        wanted = set(purchase_ids or ())
        count = 0
        with self._lock:
            for eid, line in self._lines.items():
                for entry in line.entries.values():
                    if entry.dead and (eid == event_id or entry.purchase.id in wanted):
                        entry.dead, entry.attempts, entry.failed_at = False, 0, None
                        entry.last_error = ""
                        self._set_status(entry.purchase.id, PurchaseStatus.QUEUED)
                        count += 1
        return count

    def ping(self) -> None:
        return None


class UnsafeMemoryQueue(MemoryQueue):
    """DELIBERATELY BROKEN: leases any undecided requests, however many batches are out.

    Without the one-batch-per-event lease, concurrent workers decide the same event at
    once; with `UnsafeMemoryInventoryStore` that is the oversell the race tests must catch.
    """

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        clock = now.timestamp()
        if after is not None:
            return []  # no lease to continue: every call leases whatever is free
        with self._lock:
            deliveries: list[Delivery] = []
            for line in self._lines.values():
                for position in sorted(line.entries):
                    entry = line.entries[position]
                    if entry.dead or entry.lease_id is not None or len(deliveries) >= max_items:
                        continue
                    entry.attempts += 1
                    entry.lease_id = f"unsafe-{clock}-{position}"
                    deliveries.append(Delivery(entry.purchase, entry.attempts, entry.lease_id))
            return deliveries


def store_from_url(url: str) -> InventoryStore:
    """`memory://` (the reference model) or `memory+unsafe://` (the negative control)."""
    unsafe = urlsplit(url).scheme == "memory+unsafe"
    return UnsafeMemoryInventoryStore() if unsafe else MemoryInventoryStore()


def queue_from_url(url: str) -> PurchaseQueue:
    """`memory://` or `memory+unsafe://`, as for the store."""
    return UnsafeMemoryQueue() if urlsplit(url).scheme == "memory+unsafe" else MemoryQueue()
