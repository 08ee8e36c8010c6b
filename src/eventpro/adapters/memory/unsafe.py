"""DELIBERATELY BROKEN adapters (`memory+unsafe://`), kept only as negative controls.

A store that reads, pauses and writes back (the incident's read-then-write), and a queue
that lets many batches of one event be in flight at once, so that concurrent workers
race. The race tests must catch them overselling; never use them for anything else.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from msgspec.structs import replace

from eventpro.adapters.memory.queue import MemoryQueue
from eventpro.adapters.memory.store import MemoryInventoryStore
from eventpro.domain.allocation import SectionStock, allocate_batch
from eventpro.domain.model import NAIVE_PAUSE_S, DecidedBatch, Purchase
from eventpro.ports import Delivery, InventoryStore, PurchaseQueue


class UnsafeMemoryInventoryStore(MemoryInventoryStore):
    """DELIBERATELY BROKEN: reads `remaining`, pauses, then writes back a computed value.

    This is the incident's read-then-write, kept only so that the race tests can prove
    they catch an oversell. Never use it for anything else.
    """

    pause_seconds = NAIVE_PAUSE_S  # the app-side time of the incident's read-then-write

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        decisions = []
        for purchase in purchases:
            known = self._decisions.get(purchase.id)
            if known is not None:
                decisions.append(known)
                continue
            key = purchase.request.section
            with self._lock:  # read: a copy of what the section holds now
                live = self._stock[purchase.event_id].sections[key]
                seen = SectionStock(live.remaining, dict(live.free) if live.free else live.free)
            time.sleep(self.pause_seconds)  # other threads read the same stale value
            batch = allocate_batch([purchase], {(purchase.event_id, key): seen}, ["ord"], now)
            with self._lock:  # write back what was computed from the stale copy
                live = self._stock[purchase.event_id].sections[key]
                live.remaining, live.free = seen.remaining, seen.free
                decision = batch.decisions[0]
                if decision.order is not None:
                    order = replace(decision.order, id=self._ids.new("ord"))
                    decision = replace(decision, order=order)
                self._remember(decision)
            decisions.append(decision)
        return DecidedBatch(decisions)


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
    return UnsafeMemoryInventoryStore()


def queue_from_url(url: str) -> PurchaseQueue:
    return UnsafeMemoryQueue()
