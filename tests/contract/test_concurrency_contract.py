"""Races: many threads compete for a few units; exactly the stock is sold.

The negative control runs the same race against `memory+unsafe://`, a read-then-write
store, and asserts that the race caught it overselling (more winners than units, and
a seat in two orders): a race that could not see an oversell proves nothing.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from eventpro.bootstrap import open_queue, open_store
from eventpro.domain.model import Event, PurchaseStatus
from eventpro.ports import InventoryStore, PurchaseQueue
from tests.contract.helpers import (
    NOW,
    admission,
    all_orders,
    assert_inventory_consistent,
    new_event,
)

THREADS = 24
STOCK = 5


def race_for_the_last_units(
    store: InventoryStore, queue: PurchaseQueue, seats: bool
) -> tuple[Event, int, int]:
    """THREADS buyers decided at once behind a barrier: (event, winners, units on sale)."""
    event = new_event(store, capacity=STOCK, seats=("A1", "A2", "A3"))
    wanted = {"seats": ["A2", "A3"]} if seats else {}
    purchases = [
        a.purchase
        for a in queue.admit([admission(event, f"b{i}", **wanted) for i in range(THREADS)])
    ]
    barrier = threading.Barrier(THREADS)

    def buy(index: int) -> PurchaseStatus:
        barrier.wait()
        return store.decide([purchases[index]], NOW).decisions[0].status

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(buy, range(THREADS)))
    return event, outcomes.count(PurchaseStatus.CONFIRMED), 1 if seats else STOCK


@pytest.mark.parametrize("seats", [False, True], ids=["general", "seats"])
def test_decide_never_exceeds_remaining_under_contention(
    store: InventoryStore, partner_queue: PurchaseQueue, seats: bool
) -> None:
    event, winners, units = race_for_the_last_units(store, partner_queue, seats=seats)
    assert_inventory_consistent(store, event)
    assert winners == units, f"{winners} of {THREADS} buyers won {units} units"


@pytest.mark.parametrize("seats", [False, True], ids=["general", "seats"])
def test_negative_control_unsafe_store_is_caught_overselling(seats: bool) -> None:
    store = open_store("memory+unsafe://")
    event, winners, units = race_for_the_last_units(store, open_queue("memory://"), seats)
    assert winners > units, f"the race did not catch the unsafe store: {winners} of {units}"
    if seats:
        sold = [label for order in all_orders(store, event.id) for label in order.seats]
        assert len(sold) > len(set(sold)), f"no seat sold twice: {sold}"
    with pytest.raises(AssertionError, match="tickets"):
        assert_inventory_consistent(store, event)
