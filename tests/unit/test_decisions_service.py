"""Deciding the line: batches, poison requests, dead letters and redrive, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from eventpro.adapters.sqlite import SqliteInventoryStore, queue_from_url, store_from_url
from eventpro.domain.model import DecidedBatch, Event, Purchase, PurchaseStatus
from eventpro.domain.rules import resolve_request
from eventpro.ports import Admission, Clock, PurchaseQueue
from eventpro.services.decisions import WorkerPolicy, decide_next_batch
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
