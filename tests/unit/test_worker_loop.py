"""The worker loop leases nothing while a backend it failed on is still down."""

from __future__ import annotations

from eventpro.adapters.memory import MemoryInventoryStore, MemoryQueue
from eventpro.ports import Clock, Unavailable
from eventpro.services.decisions import WorkerPolicy
from eventpro.worker.loop import run_once
from tests.contract.helpers import admission, new_event


class DownStore(MemoryInventoryStore):
    down = True

    def ping(self) -> None:
        if self.down:
            raise Unavailable("the store is down")


def test_after_a_failure_nothing_is_leased_until_the_store_answers() -> None:
    store, queue = DownStore(), MemoryQueue()
    event = new_event(store)
    purchase = queue.admit([admission(event, "a")])[0].purchase
    policy = WorkerPolicy(max_attempts=2)
    for _ in range(5):  # an outage longer than max_attempts leases would last
        assert run_once(store, queue, Clock(), policy, check_first=True) is None
    store.down = False
    result = run_once(store, queue, Clock(), policy, check_first=True)
    assert result is not None and result.decided == 1 and result.dead_lettered == 0
    decided = queue.get_purchase(purchase.id)
    assert decided is not None and decided.status.is_final  # never dead-lettered
