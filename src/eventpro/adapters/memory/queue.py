"""`MemoryQueue`: the reference model of the purchase queue, under one lock.

Each event has a line: its next position, the undecided entries by position (the dead
letters among them), a sorted list of those positions (so `ahead` is a binary search),
and the event lease that keeps one batch of the event in flight at a time.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from msgspec.structs import replace

from eventpro.adapters.paging import page_after
from eventpro.domain.allocation import refusal_in_line
from eventpro.domain.model import Decision, Purchase, PurchaseStatus, Reason
from eventpro.ports import (
    Admission,
    Admitted,
    DeadLetter,
    Delivery,
    IdSource,
    Page,
    PurchaseQueue,
)


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
    undecided: list[int] = field(default_factory=list)  # the entries' positions, sorted
    dead_moves: int = 0  # dead letters made and redriven: only grows (see `line_mark`)

    def remove(self, position: int) -> None:
        del self.entries[position]
        del self.undecided[bisect.bisect_left(self.undecided, position)]


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
                return a.replayed(self._log[earlier_id][1])
        line = self._line(a.event_id)
        reason = a.rejected_for or self._reason(a, line)
        position = None
        if reason is None:
            position = line.next_position
            line.next_position += 1
        purchase = a.purchase(reason, position)
        self._log[purchase.id] = (next(self._seq), purchase)
        if position is not None:
            line.entries[position] = _Entry(purchase)
            line.undecided.append(position)  # positions only grow: still sorted
        if a.idempotency_key is not None:
            self._keys[(a.event_id, a.idempotency_key)] = purchase.id
        return Admitted(purchase)

    def _reason(self, a: Admission, line: _Line) -> Reason | None:
        key = (a.event_id, a.request.buyer_id)
        held = self._held.get(key, 0)
        sold_out = a.request.section in line.sold_out
        reason = refusal_in_line(a.request.quantity, a.per_buyer_limit, held, sold_out)
        if reason is None:
            self._held[key] = held + a.request.quantity
        return reason

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
        line.remove(purchase.position)
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
                    line.dead_moves += 1
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
            return bisect.bisect_left(line.undecided, purchase.position)

    def depth(self, event_id: str) -> int:
        with self._lock:
            line = self._lines.get(event_id)
            return len(line.entries) if line else 0

    def line_mark(self, event_id: str) -> Hashable:
        with self._lock:
            line = self._lines.get(event_id)
            if line is None:
                return None
            return (line.next_position, len(line.entries), line.dead_moves)

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
                        line.dead_moves += 1
                        self._set_status(entry.purchase.id, PurchaseStatus.QUEUED)
                        count += 1
        return count

    def ping(self) -> None:
        return None
