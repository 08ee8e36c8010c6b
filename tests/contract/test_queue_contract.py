"""The PurchaseQueue contract: admission, leases, completion, dead letters, redrive."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from eventpro.domain.model import Purchase, PurchaseStatus, Reason
from eventpro.ports import InventoryStore, PurchaseQueue
from tests.backends import reopened, requires
from tests.contract.helpers import NOW, admission, drain, new_event


def test_admit_gives_positions_in_arrival_order(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    first = queue.admit([admission(event, f"b{i}") for i in range(3)])
    second = queue.admit([admission(event, "b3")])
    assert [a.purchase.position for a in first + second] == [1, 2, 3, 4]
    assert all(a.purchase.status is PurchaseStatus.QUEUED for a in first)
    assert queue.depth(event.id) == 4
    assert queue.ahead(second[0].purchase) == 3


def test_admit_with_same_key_is_idempotent(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    first = queue.admit([admission(event, "a", key="k1", body="h1")])[0]
    again, other = queue.admit(
        [admission(event, "a", key="k1", body="h1"), admission(event, "a", 2, key="k1", body="h2")]
    )
    assert again.replayed and again.purchase.id == first.purchase.id
    assert other.key_mismatch and other.purchase.id == first.purchase.id
    assert queue.depth(event.id) == 1


def test_same_key_in_one_group_is_admitted_once(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    first, again = queue.admit(
        [admission(event, "a", key="k1", body="h"), admission(event, "a", key="k1", body="h")]
    )
    assert again.purchase.id == first.purchase.id and queue.depth(event.id) == 1


def test_limit_counts_requests_in_line_and_rejects_at_once(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store, limit=3)
    results = queue.admit(
        [admission(event, "a", 2), admission(event, "a", 2), admission(event, "b", 3)]
    )
    rejected = results[1].purchase
    assert rejected.status is PurchaseStatus.REJECTED and rejected.reason is Reason.LIMIT_EXCEEDED
    assert rejected.position is None
    assert queue.get_purchase(rejected.id) == rejected
    assert [r.purchase.position for r in results] == [1, None, 2]


def test_rejection_gives_back_buyer_count(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store, capacity=1, limit=2)
    queue.admit([admission(event, "x"), admission(event, "a", 2)])
    drain(store, queue)  # x takes the only ticket; a's 2 are rejected and given back
    retry = queue.admit([admission(event, "a", 2, seats=None, section="A")])[0]
    assert retry.purchase.status is PurchaseStatus.QUEUED


def test_sold_out_section_rejects_at_once_without_a_position(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store, capacity=1)
    queue.admit([admission(event, "a")])
    drain(store, queue)
    late = queue.admit([admission(event, "b")])[0].purchase
    assert (late.status, late.reason, late.position) == (
        PurchaseStatus.REJECTED,
        Reason.SOLD_OUT,
        None,
    )
    assert queue.depth(event.id) == 0


def test_lease_takes_lowest_positions_and_skips_event_with_batch_in_flight(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, f"b{i}") for i in range(5)])
    first = queue.lease(2, 30, NOW)
    assert [d.purchase.position for d in first] == [1, 2]
    assert all(d.attempt == 1 for d in first)
    assert queue.lease(10, 30, NOW) == []  # one batch of an event at a time
    decisions = store.decide([d.purchase for d in first], NOW).decisions
    queue.complete(first, decisions)
    assert [d.purchase.position for d in queue.lease(10, 30, NOW)] == [3, 4, 5]


def test_lease_after_visibility_timeout_redelivers(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, "a"), admission(event, "b")])
    first = queue.lease(10, 5, NOW)
    assert queue.lease(10, 5, NOW + timedelta(seconds=4)) == []
    again = queue.lease(10, 5, NOW + timedelta(seconds=6))
    assert [d.purchase.id for d in again] == [d.purchase.id for d in first]
    assert [d.attempt for d in again] == [2, 2]


def test_complete_records_decisions_and_is_idempotent(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store, capacity=1)
    queue.admit([admission(event, "a"), admission(event, "b")])
    deliveries = queue.lease(10, 30, NOW)
    decisions = store.decide([d.purchase for d in deliveries], NOW).decisions
    queue.complete(deliveries, decisions)
    queue.complete(deliveries, decisions)
    winner = queue.get_purchase(deliveries[0].purchase.id)
    loser = queue.get_purchase(deliveries[1].purchase.id)
    assert winner.status is PurchaseStatus.CONFIRMED and winner.order_id == decisions[0].order.id
    assert loser.status is PurchaseStatus.REJECTED and loser.reason is Reason.SOLD_OUT
    assert queue.depth(event.id) == 0 and queue.lease(10, 30, NOW) == []


def test_fail_after_max_attempts_moves_to_dead_letter(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, "a")])
    first = queue.lease(10, 30, NOW)[0]
    assert not queue.fail(first, "boom", 2, NOW)
    second = queue.lease(10, 30, NOW)[0]  # given back at once
    assert second.attempt == 2
    assert queue.fail(second, "boom again", 2, NOW)
    assert queue.lease(10, 30, NOW) == []
    letters = queue.dead_letters(event.id, 10, None).items
    assert [(d.purchase.id, d.attempts, d.last_error) for d in letters] == [
        (first.purchase.id, 2, "boom again")
    ]
    assert queue.get_purchase(first.purchase.id).status is PurchaseStatus.FAILED
    assert queue.depth(event.id) == 1


def test_redrive_restores_original_position(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, "a"), admission(event, "b")])
    poisoned = queue.lease(1, 30, NOW)[0]
    queue.fail(poisoned, "boom", 1, NOW)
    drain(store, queue)
    assert queue.redrive(None, [poisoned.purchase.id]) == 1
    assert queue.redrive(event.id, None) == 0
    back = queue.lease(10, 30, NOW)
    assert [(d.purchase.position, d.attempt) for d in back] == [(1, 1)]
    assert queue.get_purchase(poisoned.purchase.id).status is PurchaseStatus.QUEUED


def test_list_purchases_in_arrival_order_with_status_filter(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store, capacity=2, limit=1)
    queue.admit([admission(event, f"b{i}") for i in range(4)] + [admission(event, "b0")])
    drain(store, queue)
    everyone = _all(queue, event.id, None)
    assert [p.buyer_id for p in everyone] == ["b0", "b1", "b2", "b3", "b0"]
    confirmed = _all(queue, event.id, PurchaseStatus.CONFIRMED)
    assert [p.position for p in confirmed] == [1, 2]


def _all(queue: PurchaseQueue, event_id: str, status: PurchaseStatus | None) -> list:
    items, cursor = [], None
    while True:
        page = queue.list_purchases(event_id, status, 2, cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def test_retried_and_redriven_requests_are_leased_before_later_ones(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, f"b{i}") for i in range(3)])
    poisoned = queue.lease(1, 30, NOW)[0]  # position 1: dead at its first failure
    assert queue.fail(poisoned, "boom", 1, NOW)
    flaky = queue.lease(1, 30, NOW)[0]  # position 2: may be tried again
    assert not queue.fail(flaky, "flaky", 5, NOW)
    queue.admit([admission(event, "b3")])
    assert queue.redrive(event.id, None) == 1
    batch = queue.lease(10, 30, NOW)
    assert [(d.purchase.position, d.attempt) for d in batch] == [(1, 1), (2, 2), (3, 1), (4, 1)]


def test_dead_letters_page_by_cursor_and_filter_by_event(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    events = [new_event(store), new_event(store)]
    for event in events:
        queue.admit([admission(event, f"b{i}") for i in range(3)])
    for _ in range(6):
        (delivery,) = queue.lease(1, 30, NOW)
        assert queue.fail(delivery, "poison", 1, NOW)
    pages, cursor = [], None
    while True:
        page = queue.dead_letters(None, 4, cursor)
        pages.append([letter.purchase.id for letter in page.items])
        if (cursor := page.next_cursor) is None:
            break
    assert [len(ids) for ids in pages] == [4, 2] and len({*pages[0], *pages[1]}) == 6
    second = queue.dead_letters(events[1].id, 10, None).items
    assert len(second) == 3 and {d.purchase.event_id for d in second} == {events[1].id}
    assert queue.depth(events[0].id) == 3


def _decide(store, queue: PurchaseQueue, deliveries) -> None:
    queue.complete(deliveries, store.decide([d.purchase for d in deliveries], NOW).decisions)


def test_a_continuing_lease_takes_the_next_requests_while_the_batch_is_completed(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, f"b{i}") for i in range(6)])
    first = queue.lease(2, 30, NOW)
    second = queue.lease(2, 30, NOW, after=first[0].lease_id)  # before `first` is completed
    assert [(d.purchase.position, d.attempt) for d in second] == [(3, 1), (4, 1)]
    assert queue.lease(10, 30, NOW) == []  # still one holder of the event
    _decide(store, queue, first)
    assert queue.lease(10, 30, NOW) == []  # completing the older batch frees nothing
    third = queue.lease(10, 30, NOW, after=second[0].lease_id)
    assert [d.purchase.position for d in third] == [5, 6]
    assert queue.lease(10, 30, NOW, after=first[0].lease_id) == []  # not the current lease
    _decide(store, queue, second)
    _decide(store, queue, third)
    assert queue.depth(event.id) == 0
    queue.admit([admission(event, "late")])
    assert [d.purchase.position for d in queue.lease(10, 30, NOW)] == [7]  # the event is free


def test_a_continuing_lease_waits_for_a_retried_request_below_it(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, f"b{i}") for i in range(4)])
    flaky, good = queue.lease(2, 30, NOW)
    assert not queue.fail(flaky, "flaky", 5, NOW)  # may be tried again: it waits in line
    _decide(store, queue, [good])
    assert queue.lease(10, 30, NOW, after=good.lease_id) == []
    again = queue.lease(10, 30, NOW)  # a fresh lease takes the retried request first
    assert [(d.purchase.position, d.attempt) for d in again] == [(1, 2), (3, 1), (4, 1)]


def test_a_continuing_lease_of_an_expired_lease_takes_nothing(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, f"b{i}") for i in range(4)])
    stale = queue.lease(2, 5, NOW)
    later = NOW + timedelta(seconds=6)
    taken_over = queue.lease(2, 5, later)  # the lease expired: another worker has the event
    assert [d.purchase.position for d in taken_over] == [1, 2]
    assert queue.lease(10, 5, later, after=stale[0].lease_id) == []
    assert [
        d.purchase.position for d in queue.lease(10, 5, later, after=taken_over[0].lease_id)
    ] == [3, 4]


def test_a_second_queue_on_the_same_url_sees_the_same_line(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    requires(queue, "shared")
    event = new_event(partner_store)
    admitted = queue.admit([admission(event, f"b{i}") for i in range(3)])
    other = reopened(queue)
    try:
        assert other.depth(event.id) == 3
        assert other.get_purchase(admitted[2].purchase.id) == admitted[2].purchase
        assert [d.purchase.position for d in other.lease(10, 30, NOW)] == [1, 2, 3]
        assert queue.lease(10, 30, NOW) == []  # the lease is shared too
    finally:
        other.close()


def test_watch_reads_many_purchases_with_the_same_ahead_as_one_by_one(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event, other = new_event(store, capacity=2), new_event(store)
    admitted = queue.admit([admission(event, f"w{i}") for i in range(4)])
    _decide(store, queue, queue.lease(1, 30, NOW))  # w0 decided; the others wait
    (poison,) = queue.lease(1, 30, NOW)
    assert queue.fail(poison, "boom", 1, NOW)  # w1 dead-lettered: still undecided
    admitted += queue.admit([admission(other, "x")])
    ids = [a.purchase.id for a in admitted]
    watched = queue.watch([*ids, "pur_unknown"])
    assert set(watched) == set(ids)
    for purchase_id in ids:
        purchase, ahead = watched[purchase_id]
        assert purchase == queue.get_purchase(purchase_id)
        undecided = purchase.status in (PurchaseStatus.QUEUED, PurchaseStatus.FAILED)
        assert ahead == (queue.ahead(purchase) if undecided else 0)
    assert watched[ids[1]][0].status is PurchaseStatus.FAILED
    assert [watched[i][1] for i in ids] == [0, 0, 1, 2, 0]


def test_watch_async_reads_what_watch_reads_on_an_event_loop(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    requires(queue, "async_watch")
    store = partner_store
    event = new_event(store, capacity=2)
    admitted = queue.admit([admission(event, f"a{i}") for i in range(4)])
    _decide(store, queue, queue.lease(1, 30, NOW))  # a0 decided; the others wait
    ids = [a.purchase.id for a in admitted] + ["pur_unknown"]

    async def twice() -> list[dict[str, tuple[Purchase, int]]]:
        try:  # twice: the second call reuses the client the first one opened
            return [await queue.watch_async(ids), await queue.watch_async(ids[1:])]
        finally:
            await queue.close_async()

    first, second = asyncio.run(twice())
    assert first == queue.watch(ids) and len(first) == 4
    assert [first[i][1] for i in ids[:4]] == [0, 0, 1, 2]
    assert second == queue.watch(ids[1:])
    # a client closed with its loop: another loop opens its own
    assert asyncio.run(twice())[0] == first


def test_the_decision_feed_announces_each_completed_event(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    requires(queue, "feed")
    store = partner_store
    event = new_event(store)
    feed = queue.decision_feed()
    assert feed is not None
    try:
        queue.admit([admission(event, "heard")])
        _decide(store, queue, queue.lease(10, 30, NOW))
        heard: set[str] = set()
        for _ in range(20):
            heard |= feed.wait(0.25)
            if event.id in heard:
                break
        assert event.id in heard
    finally:
        feed.close()


def test_the_line_mark_moves_when_a_request_is_admitted_or_decided(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    store = partner_store
    event = new_event(store)
    marks = [queue.line_mark(event.id)]
    queue.admit([admission(event, "m0")])
    marks.append(queue.line_mark(event.id))
    _decide(store, queue, queue.lease(10, 30, NOW))
    marks.append(queue.line_mark(event.id))
    assert marks[0] != marks[1] != marks[2]


def test_the_line_mark_moves_where_the_depth_does_not(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    """As many admissions as decisions, a dead letter, a redrive: the depth stays put, and
    a stream that read nothing would miss the change."""
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, "m0")])
    before, depth = queue.line_mark(event.id), queue.depth(event.id)
    first = queue.lease(10, 30, NOW)
    queue.admit([admission(event, "m1")])
    _decide(store, queue, first)
    assert queue.depth(event.id) == depth and queue.line_mark(event.id) != before
    before = queue.line_mark(event.id)
    assert queue.fail(queue.lease(10, 30, NOW)[0], "poison", 1, NOW)  # now a dead letter
    assert queue.depth(event.id) == depth and queue.line_mark(event.id) != before
    before = queue.line_mark(event.id)
    assert queue.redrive(event.id, None) == 1
    assert queue.depth(event.id) == depth and queue.line_mark(event.id) != before


def test_the_line_mark_never_comes_back_to_a_value_it_had(
    partner_store: InventoryStore, queue: PurchaseQueue
) -> None:
    """A dead letter and its redrive put the line's counters back as they were. A watcher
    that read the mark just before the dead letter, and the purchase just after it, would
    then take the redrive for no change and show `failed` until its next full read."""
    store = partner_store
    event = new_event(store)
    queue.admit([admission(event, "m0")])
    marks = [queue.line_mark(event.id)]
    for _ in range(2):
        assert queue.fail(queue.lease(10, 30, NOW)[0], "poison", 1, NOW)
        marks.append(queue.line_mark(event.id))
        assert queue.redrive(event.id, None) == 1
        marks.append(queue.line_mark(event.id))
    _decide(store, queue, queue.lease(10, 30, NOW))
    marks.append(queue.line_mark(event.id))
    assert len(set(marks)) == len(marks), marks
