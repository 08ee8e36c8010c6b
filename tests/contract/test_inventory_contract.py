"""The InventoryStore contract: every adapter, the same behaviour."""

from __future__ import annotations

import pytest

from eventpro.domain.model import Purchase, PurchaseStatus, Reason
from eventpro.ports import Conflict, InventoryStore, PurchaseQueue
from tests.backends import reopened, requires
from tests.contract.helpers import (
    NOW,
    admission,
    all_orders,
    assert_inventory_consistent,
    drain,
    new_event,
)


def _queued(queue: PurchaseQueue, *admissions) -> list[Purchase]:
    return [a.purchase for a in queue.admit(list(admissions))]


def test_create_event_then_read_it_back_with_full_stock(store: InventoryStore) -> None:
    event = new_event(store, capacity=7)
    inventory = store.get_inventory(event.id)
    assert inventory is not None and inventory.event == event
    assert inventory.remaining == {"Floor": 7, "A": 4}
    assert store.get_inventory("evt_missing") is None


def test_create_event_twice_is_a_conflict(store: InventoryStore) -> None:
    event = new_event(store)
    with pytest.raises(Conflict):
        store.create_event(event)


def test_decide_takes_general_admission_only_while_enough_remains(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    queue = partner_queue
    event = new_event(store, capacity=3)
    purchases = _queued(
        queue, admission(event, "a", 2), admission(event, "b", 2), admission(event, "c", 1)
    )
    batch = store.decide(purchases, NOW)
    assert [d.status for d in batch.decisions] == [
        PurchaseStatus.CONFIRMED,
        PurchaseStatus.REJECTED,
        PurchaseStatus.CONFIRMED,
    ]
    assert batch.decisions[1].reason is Reason.SOLD_OUT
    assert batch.emptied_sections == {"Floor"}
    assert store.get_inventory(event.id).remaining["Floor"] == 0
    assert_inventory_consistent(store, event)


def test_decide_twice_takes_stock_once(store: InventoryStore, partner_queue: PurchaseQueue) -> None:
    queue = partner_queue
    event = new_event(store, capacity=5)
    purchases = _queued(queue, admission(event, "a", 2))
    first = store.decide(purchases, NOW).decisions[0]
    again = store.decide(purchases, NOW).decisions[0]
    assert again == first and again.order is not None
    assert store.get_inventory(event.id).remaining["Floor"] == 3
    assert len(all_orders(store, event.id)) == 1


def test_a_redelivered_batch_takes_stock_only_for_its_new_purchases(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    queue = partner_queue
    event = new_event(store, capacity=10)
    decided, *new = _queued(
        queue, admission(event, "a", 2), admission(event, "b", 1), admission(event, "c", 2)
    )
    first = store.decide([decided], NOW).decisions[0]
    batch = store.decide([decided, *new], NOW).decisions
    assert batch[0] == first
    assert [d.status for d in batch[1:]] == [PurchaseStatus.CONFIRMED] * 2
    assert store.get_inventory(event.id).remaining["Floor"] == 5
    assert len(all_orders(store, event.id)) == 3
    assert_inventory_consistent(store, event)


def test_named_seats_are_all_or_nothing(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    queue = partner_queue
    event = new_event(store)
    first, second = _queued(
        queue, admission(event, "a", seats=["A1", "A2"]), admission(event, "b", seats=["A2", "A3"])
    )
    decisions = store.decide([first, second], NOW).decisions
    assert decisions[0].order is not None and decisions[0].order.seats == ("A1", "A2")
    assert decisions[1].status is PurchaseStatus.REJECTED
    assert decisions[1].reason is Reason.SEAT_TAKEN
    assert dict(store.seat_map(event.id, "A")) == {"A1": False, "A2": False, "A3": True, "A4": True}
    assert store.get_inventory(event.id).remaining["A"] == 2
    assert_inventory_consistent(store, event)


def test_any_seats_takes_the_lowest_free_ones(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    queue = partner_queue
    event = new_event(store)
    named, anywhere, too_many = _queued(
        queue,
        admission(event, "a", seats=["A1"]),
        admission(event, "b", 2, section="A"),
        admission(event, "c", 2, section="A"),
    )
    decisions = store.decide([named, anywhere, too_many], NOW).decisions
    assert decisions[1].order is not None and decisions[1].order.seats == ("A2", "A3")
    assert decisions[2].reason is Reason.SOLD_OUT
    assert_inventory_consistent(store, event)


def test_orders_are_listed_in_allocation_order_with_cursors(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    queue = partner_queue
    event = new_event(store, capacity=20)
    purchases = _queued(queue, *(admission(event, f"b{i}") for i in range(7)))
    for purchase in purchases:
        store.decide([purchase], NOW)
    page = store.list_orders(event.id, 3, None)
    seen = [o.purchase_id for o in page.items]
    while page.next_cursor:
        page = store.list_orders(event.id, 3, page.next_cursor)
        seen += [o.purchase_id for o in page.items]
    assert seen == [p.id for p in purchases]
    order = store.get_order(page.items[-1].id)
    assert order is not None and order.buyer_id == "b6" and order.amount_cents == 2500
    assert store.get_order("ord_missing") is None


def test_orders_read_together_are_the_orders_read_one_by_one(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    event = new_event(store, capacity=20)
    purchases = _queued(partner_queue, *(admission(event, f"b{i}") for i in range(5)))
    decided = store.decide(purchases, NOW).decisions
    ids = [d.order.id for d in decided if d.order is not None]
    assert len(ids) == 5
    asked = [*ids, ids[0], "ord_missing"]  # a repeat and an unknown id
    together = store.get_orders(asked)
    assert together == {order_id: store.get_order(order_id) for order_id in ids}
    assert store.get_orders([]) == {}


def test_paging_events_while_creating_never_repeats_or_skips(store: InventoryStore) -> None:
    created = [new_event(store).id for _ in range(5)]
    first = store.list_events(2, None)
    created += [new_event(store).id for _ in range(3)]  # newer ones go before the first page
    seen = [e.id for e in first.items]
    cursor = first.next_cursor
    while cursor:
        page = store.list_events(2, cursor)
        seen += [e.id for e in page.items]
        cursor = page.next_cursor
    assert seen == list(reversed(created[:5]))


def test_a_bad_cursor_is_a_value_error(store: InventoryStore) -> None:
    event = new_event(store)
    with pytest.raises(ValueError):
        store.list_orders(event.id, 10, "not-a-cursor!")


def test_pause_and_resume_are_stored(store: InventoryStore) -> None:
    event = new_event(store)
    assert store.set_paused(event.id, True)
    assert store.get_inventory(event.id).event.paused
    assert store.set_paused(event.id, False)
    assert not store.get_inventory(event.id).event.paused
    assert not store.set_paused("evt_missing", True)


def test_ping_answers(store: InventoryStore, partner_queue: PurchaseQueue) -> None:
    queue = partner_queue
    store.ping()
    queue.ping()


def test_a_second_store_on_the_same_url_sees_the_same_stock(
    store: InventoryStore, partner_queue: PurchaseQueue
) -> None:
    requires(store, "shared")
    event = new_event(store, capacity=3)
    partner_queue.admit([admission(event, "a", 2)])
    drain(store, partner_queue)
    other = reopened(store)
    try:
        inventory = other.get_inventory(event.id)
        assert inventory is not None and inventory.remaining["Floor"] == 1
        assert [o.quantity for o in all_orders(other, event.id)] == [2]
    finally:
        other.close()
