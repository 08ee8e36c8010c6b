"""Every adapter against the in-memory reference model, driven by Hypothesis.

The same commands go to two pairs (admit, decide a batch, fail a delivery, redrive): the
reference pair, and the adapter under test beside the reference partner (a store with
the memory queue, a queue with the memory store). After every step their observable
state must agree, and the invariants must hold.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from msgspec.structs import replace

from eventpro.bootstrap import drop_scope, open_queue, open_store
from eventpro.domain.model import Event
from eventpro.domain.rules import resolve_request
from eventpro.ports import Admission, InventoryStore, PurchaseQueue
from tests.backends import QUEUES, STORES, backend_url
from tests.contract.helpers import NOW, all_orders, assert_inventory_consistent, new_event

BUYERS = st.sampled_from(["ann", "bob", "cat", "dan"])
SEATS = ("A1", "A2", "A3", "A4")


PURCHASE_IDS = itertools.count(1)  # across examples: they may share one database


class AdapterMatchesTheModel(RuleBasedStateMachine):
    def __init__(self, role: str, backend: str, folder: Path) -> None:
        super().__init__()
        # a fresh scope per example: a line left by an earlier example would be leased
        self.url = url = backend_url(backend, folder / uuid.uuid4().hex)
        self.backend = backend
        tested = (
            (open_store(url), open_queue("memory://"))
            if role == "store"
            else (open_store("memory://"), open_queue(url))
        )
        self.pairs: list[tuple[InventoryStore, PurchaseQueue]] = [
            (open_store("memory://"), open_queue("memory://")),
            tested,
        ]
        self.event: Event | None = None

    @initialize(capacity=st.integers(1, 6), limit=st.integers(1, 4))
    def create(self, capacity: int, limit: int) -> None:
        event = new_event(self.pairs[0][0], capacity=capacity, seats=SEATS, limit=limit)
        self.pairs[1][0].create_event(event)
        self.event = event

    @rule(
        buyer=BUYERS,
        quantity=st.integers(1, 3),
        seats=st.none() | st.lists(st.sampled_from(SEATS), min_size=1, max_size=2, unique=True),
        key=st.none() | st.sampled_from(["k1", "k2"]),
        anywhere=st.booleans(),
    )
    def admit(self, buyer, quantity, seats, key, anywhere) -> None:
        assert self.event is not None
        quantity = min(quantity, self.event.per_buyer_limit)
        if seats is not None and len(seats) > self.event.per_buyer_limit:
            seats = seats[: self.event.per_buyer_limit]
        section = "A" if anywhere else "Floor"
        request = resolve_request(
            self.event,
            buyer,
            section=None if seats else section,
            seats=seats,
            quantity=None if seats else quantity,
        )
        admission = Admission(
            purchase_id=f"pur_{next(PURCHASE_IDS):08d}",
            event_id=self.event.id,
            request=request,
            per_buyer_limit=self.event.per_buyer_limit,
            received_at=NOW,
            idempotency_key=key,
            request_hash=repr(request) if key else None,
        )
        outcomes = [queue.admit([admission])[0] for _, queue in self.pairs]
        model, real = outcomes
        assert (real.replayed, real.key_mismatch) == (model.replayed, model.key_mismatch)
        # Order ids are random in each adapter; everything else must be the same.
        assert replace(real.purchase, order_id=None) == replace(model.purchase, order_id=None)

    @rule(batch=st.integers(1, 4))
    def decide_a_batch(self, batch: int) -> None:
        results = []
        for store, queue in self.pairs:
            deliveries = queue.lease(batch, 30, NOW)
            decided = store.decide([d.purchase for d in deliveries], NOW)
            if decided.emptied_sections:
                queue.mark_sold_out(deliveries[0].purchase.event_id, decided.emptied_sections)
            queue.complete(deliveries, decided.decisions)
            queue.complete(deliveries, decided.decisions)  # replaying is a no-op
            results.append(
                [(d.purchase_id, d.status, d.reason, _seats(d)) for d in decided.decisions]
            )
        assert results[1] == results[0]

    @rule(max_attempts=st.integers(1, 2))
    def fail_the_next_delivery(self, max_attempts: int) -> None:
        moved = []
        for _, queue in self.pairs:
            deliveries = queue.lease(1, 30, NOW)
            moved.append(bool(deliveries) and queue.fail(deliveries[0], "boom", max_attempts, NOW))
        assert moved[1] == moved[0]

    @rule()
    def redrive(self) -> None:
        assert self.event is not None
        counts = [queue.redrive(self.event.id, None) for _, queue in self.pairs]
        assert counts[1] == counts[0]

    @invariant()
    def same_observable_state(self) -> None:
        if self.event is None:
            return
        views = []
        for store, queue in self.pairs:
            inventory = store.get_inventory(self.event.id)
            purchases = queue.list_purchases(self.event.id, None, 1000, None).items
            views.append(
                (
                    inventory.remaining if inventory else None,
                    [(p.id, p.status, p.position, p.reason) for p in purchases],
                    [queue.ahead(p) for p in purchases if not p.status.is_final],
                    queue.depth(self.event.id),
                    sorted((o.purchase_id, o.seats) for o in all_orders(store, self.event.id)),
                )
            )
        assert views[1] == views[0]

    @invariant()
    def stock_is_consistent_and_limits_hold(self) -> None:
        if self.event is None:
            return
        for store, _ in self.pairs:
            assert_inventory_consistent(store, self.event)
            held: dict[str, int] = {}
            for order in all_orders(store, self.event.id):
                held[order.buyer_id] = held.get(order.buyer_id, 0) + order.quantity
            assert max(held.values(), default=0) <= self.event.per_buyer_limit

    def teardown(self) -> None:
        for store, queue in self.pairs:
            queue.close()
            store.close()
        if self.backend != "sqlite":
            drop_scope(self.url)


def _seats(decision) -> tuple[str, ...]:
    return decision.order.seats if decision.order else ()


ADAPTERS = [("store", b) for b in STORES if b != "memory"]
ADAPTERS += [("queue", b) for b in QUEUES if b != "memory"]


@pytest.mark.parametrize(("role", "backend"), ADAPTERS, ids=[f"{r}-{b}" for r, b in ADAPTERS])
def test_adapter_matches_the_model(role: str, backend: str, tmp_path: Path) -> None:
    backend_url(backend, tmp_path)  # skips (or fails under CI) when the server is missing
    run_state_machine_as_test(
        lambda: AdapterMatchesTheModel(role, backend, tmp_path),
        settings=settings(max_examples=25, stateful_step_count=30, deadline=None),
    )
