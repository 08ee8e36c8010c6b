"""The worker loop leases nothing while a backend it failed on is still down."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from eventpro.adapters.memory import MemoryInventoryStore, MemoryQueue
from eventpro.domain.model import DecidedBatch, Purchase
from eventpro.ports import Clock, Unavailable
from eventpro.services.decisions import WorkerPolicy
from eventpro.worker.loop import run_once
from tests.contract.helpers import NOW, admission, new_event


class DownStore(MemoryInventoryStore):
    down = True

    def ping(self) -> None:
        if self.down:
            raise Unavailable("the store is down")

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        self.ping()
        return super().decide(purchases, now)


class Stepping(Clock):
    """Each reading 31 s after the last: every lease of the loop has expired by then."""

    def __init__(self) -> None:
        self.moment = NOW

    def now(self) -> datetime:
        self.moment += timedelta(seconds=31)
        return self.moment


def test_after_a_failure_nothing_is_leased_until_the_store_answers() -> None:
    store, queue = DownStore(), MemoryQueue()
    event = new_event(store)
    purchase = queue.admit([admission(event, "a")])[0].purchase
    policy = WorkerPolicy(max_attempts=2)
    clock = Stepping()
    assert run_once(store, queue, clock, policy) is None  # the failure: one lease, spent
    for _ in range(5):  # an outage longer than max_attempts leases would last
        assert run_once(store, queue, clock, policy, check_first=True) is None
    store.down = False
    result = run_once(store, queue, clock, policy, check_first=True)
    assert result is not None and result.decided == 1 and result.dead_lettered == 0
    decided = queue.get_purchase(purchase.id)
    assert decided is not None and decided.status.is_final  # never dead-lettered
