"""The audit against hand-built sales on the memory adapters: clean, and each kind of broken."""

from __future__ import annotations

from msgspec.structs import replace

from eventpro.adapters.memory import MemoryInventoryStore, MemoryQueue
from eventpro.adapters.memory.unsafe import UnsafeMemoryInventoryStore
from eventpro.domain.model import Decision, PurchaseStatus, Reason
from eventpro.ports import InventoryStore
from eventpro.services.audit import AuditReport, audit_event
from tests.contract.helpers import NOW, admission, drain, new_event


def _audit(
    store: InventoryStore, queue: MemoryQueue, event_id: str, settled: bool = True
) -> AuditReport:
    report = audit_event(store, queue, event_id, settled)
    assert report is not None
    return report


def _broken(store: InventoryStore, queue: MemoryQueue, event_id: str) -> list[int]:
    return [c.number for c in _audit(store, queue, event_id).checks if not c.ok]


def _detail(report: AuditReport, number: int) -> str:
    return next(c.detail for c in report.checks if c.number == number)


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
    store._stock[event.id].sections[
        "Floor"
    ].remaining = 5  # the incident: a stale value written back
    store.decide(purchases, NOW)
    assert 1 in _broken(store, queue, event.id)
    assert 3 in _broken(store, queue, event.id)  # decided in the store, still queued in line


def test_an_unknown_event_has_no_report() -> None:
    assert audit_event(MemoryInventoryStore(), MemoryQueue(), "evt_missing") is None


def test_a_sold_out_sale_with_seats_and_a_dead_letter_passes() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=2, seats=("A1", "A2"))
    queue.admit(
        [admission(event, f"b{i}") for i in range(4)]
        + [admission(event, "s1", seats=["A1"]), admission(event, "s2", seats=["A1", "A2"])]
    )
    drain(store, queue)
    (poison,) = (a.purchase for a in queue.admit([admission(event, "late", seats=["A2"])]))
    (delivery,) = queue.lease(10, 30, NOW)
    assert queue.fail(delivery, "boom", max_attempts=1, now=NOW)  # now a dead letter
    report = _audit(store, queue, event.id)
    assert report.ok, report.checks
    assert report.counts["confirmed"] == 3 and report.counts["rejected_sold_out"] == 2
    assert report.counts["rejected_seat_taken"] == 1 and report.counts["failed"] == 1
    assert "1 in the dead-letter queue" in _detail(report, 3) and poison.position == 7


def test_a_seat_in_two_orders_breaks_invariant_one() -> None:
    # The stale write-back of a read-then-write store: A1 is sold, then the section is
    # written back as it was read before the sale, so the second request for A1 wins it too.
    store, queue = UnsafeMemoryInventoryStore(), MemoryQueue()
    store.pause_seconds = 0
    event = new_event(store, capacity=1)
    first, second = queue.admit(
        [admission(event, "a", seats=["A1"]), admission(event, "b", seats=["A1"])]
    )
    section = store._stock[event.id].sections["A"]
    read_before = (section.remaining, dict(section.free or {}))
    store.decide([first.purchase], NOW)
    section.remaining, section.free = read_before
    store.decide([second.purchase], NOW)
    drain(store, queue)  # the line learns the stored decisions
    report = _audit(store, queue, event.id)
    assert _broken(store, queue, event.id) == [1]
    assert "seats in two orders: A1" in _detail(report, 1)


def test_a_buyer_over_the_limit_breaks_invariant_two() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=10, limit=4)
    # An admission that forgot the event's limit lets one buyer take 3 + 3.
    queue.admit([replace(admission(event, "greedy", 3), per_buyer_limit=100) for _ in range(2)])
    drain(store, queue)
    assert _broken(store, queue, event.id) == [2]
    assert "1 buyers over 4" in _detail(_audit(store, queue, event.id), 2)


def test_requests_left_in_line_break_invariant_three_only_when_settled_is_expected() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=10)
    queue.admit([admission(event, f"b{i}") for i in range(3)])
    assert _broken(store, queue, event.id) == [3]
    assert "3 still queued" in _detail(_audit(store, queue, event.id), 3)
    lenient = _audit(store, queue, event.id, settled=False)
    assert lenient.ok and "3 queued" in _detail(lenient, 3)


def test_a_failed_request_outside_the_dead_letter_queue_is_lost() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=10)
    (purchase,) = (a.purchase for a in queue.admit([admission(event, "b")]))
    queue._set_status(purchase.id, PurchaseStatus.FAILED)  # failed, never dead-lettered
    assert _broken(store, queue, event.id) == [3]
    assert "1 failed but not in the dead-letter queue" in _detail(_audit(store, queue, event.id), 3)


def test_a_confirmed_request_without_its_order_breaks_invariant_three() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=10)
    queue.admit([admission(event, "b")])
    # Confirmed in the line but never decided by the store: no order, no stock taken.
    deliveries = queue.lease(10, 30, NOW)
    confirmed = Decision(deliveries[0].purchase.id, PurchaseStatus.CONFIRMED)
    queue.complete(deliveries, [confirmed])
    assert _broken(store, queue, event.id) == [3]
    detail = _detail(_audit(store, queue, event.id), 3)
    assert "1 confirmed purchases without one order" in detail


def test_refusing_while_tickets_remain_breaks_invariant_five() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=3)
    queue.admit([admission(event, "a"), admission(event, "b")])
    first, second = queue.lease(10, 30, NOW)
    decided = store.decide([first.purchase], NOW).decisions
    refused = Decision(second.purchase.id, PurchaseStatus.REJECTED, Reason.SOLD_OUT)
    queue.complete([first, second], [*decided, refused])  # "sold out" with 2 left
    assert _broken(store, queue, event.id) == [5]
    assert "Floor: 2 left beyond 0 asked by dead letters, yet 1 refused" in _detail(
        _audit(store, queue, event.id), 5
    )


def test_a_dead_letter_excuses_only_the_tickets_it_asked_for() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=4)
    queue.admit([admission(event, "poison"), admission(event, "a"), admission(event, "b")])
    poison = queue.lease(1, 30, NOW)[0]
    assert queue.fail(poison, "boom", 1, NOW)  # dead: its 1 ticket may fairly remain
    first, second = queue.lease(10, 30, NOW)
    decided = store.decide([first.purchase], NOW).decisions
    refused = Decision(second.purchase.id, PurchaseStatus.REJECTED, Reason.SOLD_OUT)
    queue.complete([first, second], [*decided, refused])  # 3 left, 1 held back, yet refused
    assert _broken(store, queue, event.id) == [5]
    assert "Floor: 2 left beyond 1 asked by dead letters" in _detail(
        _audit(store, queue, event.id), 5
    )


def test_a_202_the_store_never_recorded_breaks_invariant_three() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=4)
    kept = queue.admit([admission(event, "a")])[0].purchase
    drain(store, queue)
    report = audit_event(store, queue, event.id, acknowledged={kept.id, "pur_lost"})
    assert report is not None and [c.number for c in report.checks if not c.ok] == [3]
    assert "1 answered 202 but never stored" in _detail(report, 3)
    clean = audit_event(store, queue, event.id, acknowledged={kept.id})
    assert clean is not None and clean.ok and "all 1 acknowledged stored" in _detail(clean, 3)


def test_two_purchases_with_one_idempotency_key_break_invariant_six() -> None:
    store, queue = MemoryInventoryStore(), MemoryQueue()
    event = new_event(store, capacity=10)
    queue.admit([admission(event, "b", key="k1", body="h")])
    queue._keys.clear()  # the key index forgets: the retry becomes a second purchase
    queue.admit([admission(event, "b", key="k1", body="h")])
    drain(store, queue)
    assert _broken(store, queue, event.id) == [6]
    assert "1 keys with two purchases" in _detail(_audit(store, queue, event.id), 6)
