"""Deciding the line: batches, streaks, poison requests, dead letters and redrive, on real
SQLite (and on the memory model where the store must be instrumented)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from eventpro.adapters.memory import MemoryInventoryStore, MemoryQueue
from eventpro.adapters.sqlite import SqliteInventoryStore, queue_from_url, store_from_url
from eventpro.domain.model import DecidedBatch, Event, Purchase, PurchaseStatus
from eventpro.domain.rules import resolve_request
from eventpro.ports import Admission, Clock, PurchaseQueue
from eventpro.services.decisions import BatchResult, WorkerPolicy, decide_next_batch, decide_streak
from tests.contract.helpers import NOW, FixedClock, new_event


class PoisonedStore(SqliteInventoryStore):
    """The real SQLite store, except that deciding one buyer's request always fails."""

    poison = "poison"

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        if any(p.buyer_id == self.poison for p in purchases):
            raise RuntimeError("cannot decide this one")
        return super().decide(purchases, now)


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[PoisonedStore, PurchaseQueue, Event]]:
    url = f"sqlite:///{tmp_path / 'decide.db'}"
    store = PoisonedStore(store_from_url(url).db)
    queue = queue_from_url(url)
    event = new_event(store, capacity=3, seats=())
    buyers = ["a", "poison", "b", "c", "d"]
    queue.admit(
        [
            Admission(
                f"pur_{name}",
                event.id,
                resolve_request(event, name, section="Floor", seats=None, quantity=1),
                4,
                NOW,
            )
            for name in buyers
        ]
    )
    yield store, queue, event
    queue.close()
    store.close()


def test_a_poison_request_is_dead_lettered_and_the_rest_decided(line) -> None:
    store, queue, event = line
    policy = WorkerPolicy(batch_size=10, visibility_timeout=30, max_attempts=2)
    first = decide_next_batch(store, queue, FixedClock(), policy)
    assert (first.leased, first.decided, first.dead_lettered) == (5, 4, 0)
    second = decide_next_batch(store, queue, FixedClock(), policy)
    assert (second.leased, second.decided, second.dead_lettered) == (1, 0, 1)
    assert decide_next_batch(store, queue, FixedClock(), policy).leased == 0

    statuses = {p.buyer_id: p.status for p in queue.list_purchases(event.id, None, 10, None).items}
    assert statuses["poison"] is PurchaseStatus.FAILED
    assert [statuses[b] for b in "abcd"].count(PurchaseStatus.CONFIRMED) == 3
    dead = queue.dead_letters(event.id, 10, None).items
    assert [d.purchase.id for d in dead] == ["pur_poison"]
    assert dead[0].attempts == 2 and "cannot decide" in dead[0].last_error
    assert queue.depth(event.id) == 1  # still undecided while in the dead-letter queue


def test_redrive_puts_a_dead_letter_back_at_its_position(line) -> None:
    store, queue, event = line
    policy = WorkerPolicy(batch_size=10, visibility_timeout=30, max_attempts=1)
    decide_next_batch(store, queue, FixedClock(), policy)
    assert queue.redrive(event.id, None) == 1
    store.poison = "nobody"
    again = decide_next_batch(store, queue, FixedClock(), policy)
    assert (again.leased, again.decided) == (1, 1)
    purchase = queue.get_purchase("pur_poison")
    assert purchase is not None and purchase.position == 2
    # The stock went to a, b and c first: the redriven request finds it sold out.
    assert purchase.status is PurchaseStatus.REJECTED
    assert queue.depth(event.id) == 0


def test_a_request_delivered_too_often_is_dead_lettered_without_deciding(line) -> None:
    store, queue, event = line
    policy = WorkerPolicy(batch_size=10, visibility_timeout=0.001, max_attempts=2)
    late = NOW + timedelta(seconds=1)
    for step in range(2):  # two workers that died holding the batch
        assert len(queue.lease(10, 0.001, NOW + timedelta(milliseconds=10 * step))) == 5

    class Later(Clock):
        def now(self) -> datetime:
            return late

    result = decide_next_batch(store, queue, Later(), policy)
    assert (result.leased, result.decided, result.dead_lettered) == (5, 0, 5)
    assert queue.depth(event.id) == 5
    assert store.get_inventory(event.id).remaining == {"Floor": 3}


class HandOffStore(MemoryInventoryStore):
    """Decides batch k only once batch k-1 is completed: that happens only if the queue
    completes it while the store decides, so a streak that does not overlap times out."""

    def __init__(self, queue: CountingQueue) -> None:
        super().__init__()
        self.queue = queue
        self.decided: list[list[int]] = []
        self.waited_in_vain = 0

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        if self.decided and not self.queue.completed.wait(2):
            self.waited_in_vain += 1  # the batch before was not completed meanwhile
        self.queue.completed.clear()
        self.decided.append([p.position or 0 for p in purchases])
        return super().decide(purchases, now)


class CountingQueue(MemoryQueue):
    def __init__(self) -> None:
        super().__init__()
        self.completed = threading.Event()
        self.fresh_leases = 0

    def lease(self, max_items, visibility_timeout, now, after=None):  # type: ignore[no-untyped-def]
        self.fresh_leases += after is None
        return super().lease(max_items, visibility_timeout, now, after)

    def complete(self, deliveries, decisions) -> None:  # type: ignore[no-untyped-def]
        super().complete(deliveries, decisions)
        self.completed.set()


def _admit(queue: PurchaseQueue, event: Event, buyers: int) -> None:
    queue.admit(
        [
            Admission(
                f"pur_{n:03d}",
                event.id,
                resolve_request(event, f"b{n}", section="Floor", seats=None, quantity=1),
                4,
                NOW,
            )
            for n in range(buyers)
        ]
    )


def test_a_streak_decides_while_the_queue_completes_and_keeps_position_order() -> None:
    queue = CountingQueue()
    store = HandOffStore(queue)
    event = new_event(store, capacity=10, seats=())
    _admit(queue, event, 25)
    batches: list[BatchResult] = []
    policy = WorkerPolicy(batch_size=4, overlap=True)
    with ThreadPoolExecutor(1) as overlap:
        total = decide_streak(store, queue, FixedClock(), policy, overlap, on_batch=batches.append)
    assert store.waited_in_vain == 0
    assert (total.leased, total.decided) == (25, 25) and queue.fresh_leases == 1
    assert [b.leased for b in batches] == [4, 4, 4, 4, 4, 4, 1]
    assert [p for batch in store.decided for p in batch] == list(range(1, 26))
    confirmed = [
        p.position for p in queue.list_purchases(event.id, PurchaseStatus.CONFIRMED, 50, None).items
    ]
    assert confirmed == list(range(1, 11))  # first come, first served
    assert queue.depth(event.id) == 0


def test_a_streak_ends_when_told_or_at_its_length() -> None:
    queue = CountingQueue()
    store = MemoryInventoryStore()
    event = new_event(store, capacity=100, seats=())
    _admit(queue, event, 30)
    asked = iter([True, False])
    stopped = decide_streak(
        store, queue, FixedClock(), WorkerPolicy(batch_size=4), go_on=lambda: next(asked)
    )
    assert stopped.decided == 8 and queue.depth(event.id) == 22
    short = decide_streak(store, queue, FixedClock(), WorkerPolicy(batch_size=4, streak=3))
    assert short.decided == 12 and queue.depth(event.id) == 10
    assert queue.fresh_leases == 2  # each streak began with one; the event was free after


def test_a_poison_request_mid_streak_is_retried_without_holding_back_the_others(line) -> None:
    store, queue, event = line  # buyers a, poison, b, c, d in line for 3 tickets
    policy = WorkerPolicy(batch_size=1, max_attempts=3)
    first = decide_streak(store, queue, FixedClock(), policy)
    # b was leased (continuing) before the poison failed; then the streak ends, so that a
    # fresh lease takes the retried request first
    assert (first.leased, first.decided, first.dead_lettered) == (3, 2, 0)
    retried = queue.lease(1, 30, NOW)
    assert [(d.purchase.id, d.attempt) for d in retried] == [("pur_poison", 2)]
    assert not queue.fail(retried[0], "still poison", 3, NOW)
    while decide_streak(store, queue, FixedClock(), policy).leased:
        pass
    confirmed = queue.list_purchases(event.id, PurchaseStatus.CONFIRMED, 9, None).items
    assert [p.buyer_id for p in confirmed] == ["a", "b", "c"]
    assert [d.purchase.id for d in queue.dead_letters(event.id, 10, None).items] == ["pur_poison"]
