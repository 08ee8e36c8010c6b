"""The audit against hand-built sales on the memory adapters: clean, and each kind of broken."""

from __future__ import annotations

from eventpro.adapters.memory import MemoryInventoryStore, MemoryQueue, UnsafeMemoryInventoryStore
from eventpro.ports import InventoryStore
from eventpro.services.audit import audit_event
from tests.contract.helpers import NOW, admission, drain, new_event


def _broken(store: InventoryStore, queue: MemoryQueue, event_id: str) -> list[int]:
    report = audit_event(store, queue, event_id)
    assert report is not None
    return [c.number for c in report.checks if not c.ok]


def test_a_clean_sale_with_mixed_quantities_passes() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=3, seats=())
    # b wants 2 when 1 is left and is refused; c then fairly takes the last ticket.
    queue.admit([admission(event, "a", 2), admission(event, "b", 2), admission(event, "c", 1)])
    drain(store, queue)
    assert _broken(store, queue, event.id) == []


def test_deciding_out_of_order_breaks_first_come_first_served() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=1, seats=())
    first, second = (
        a.purchase for a in queue.admit([admission(event, "a"), admission(event, "b")])
    )
    later = store.decide([second, first], NOW)  # the second in line decided first
    deliveries = queue.lease(10, 30, NOW)
    queue.complete(deliveries, later.decisions[::-1])
    assert _broken(store, queue, event.id) == [4]


def test_an_oversold_section_and_undecided_requests_are_reported() -> None:
    store, queue = UnsafeMemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=1, seats=())
    purchases = [a.purchase for a in queue.admit([admission(event, f"b{i}") for i in range(3)])]
    store._stock[event.id].remaining["Floor"] = 5  # the incident: a stale value written back
    store.decide(purchases, NOW)
    assert 1 in _broken(store, queue, event.id)
    assert 3 in _broken(store, queue, event.id)  # decided in the store, still queued in line


def test_an_unknown_event_has_no_report() -> None:
    assert audit_event(MemoryInventoryStore(), MemoryQueue(), "evt_missing") is None
