"""Deciding a batch on DynamoDB: plan in memory from fresh counters, commit in transactions.

1. Read, strongly consistent, in one BatchGetItem per 100 keys: the decisions already
   stored for the batch (a redelivery) and the counters of the sections it asks for.
2. Plan each undecided purchase in order, exactly as the in-memory model does (first come,
   first served; a later smaller request may take what a larger earlier one could not).
3. Commit in TransactWriteItems of at most 100 actions: each decision `Put` with
   `attribute_not_exists(pk)`, each seat `Update` with `attribute_not_exists(owner)`, and
   one counter `Update` per section for the whole run, `remaining >= :sum`.

Stock only ever decreases, so a plan made from a counter that has since dropped is still
right about its rejections; its allocations are guarded by `remaining >= :sum`. A
transaction that loses (another worker decided some of these purchases, or took stock
meanwhile) changes nothing, and the batch is planned again from fresh reads. A crash
between two transactions leaves a prefix decided; the redelivery finds those decisions
and takes stock only for the rest. A decrement is never lost or doubled, because it
commits in the same transaction as the decisions it pays for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import (
    CONFLICT_RETRIES,
    MAX_TRANSACT_ITEMS,
    Item,
    backoff,
    batch_get,
    n,
    num,
    query_all,
    s,
    text,
    transact,
)
from eventpro.domain.model import (
    DecidedBatch,
    Decision,
    Event,
    Purchase,
    PurchaseStatus,
    Reason,
    Section,
)
from eventpro.domain.rules import make_order
from eventpro.ports import StoreError, Unavailable

# One purchase of named seats is one transaction: its seats, its decision, the counter.
MAX_SEATS_PER_PURCHASE = MAX_TRANSACT_ITEMS - 2

SectionKey = tuple[str, str]  # (event id, section name)


class _Lost(Exception):
    """A transaction was cancelled: plan the batch again from fresh reads."""


@dataclass
class _Planned:
    purchase: Purchase
    decision: Decision
    actions: list[dict[str, Any]]
    section: SectionKey
    taken: int


@dataclass
class _State:
    remaining: dict[SectionKey, int] = field(default_factory=dict)
    seats: dict[SectionKey, dict[str, list[Any]]] = field(default_factory=dict)  # label: [sk, sold]


class Decider:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table
        self._events: dict[str, Event] = {}  # definitions never change (only `paused`)

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._once(purchases, now)
            except _Lost:
                backoff(attempt)
        raise Unavailable(f"dynamodb: a batch lost {CONFLICT_RETRIES} races in a row")

    def _once(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        known, state = self._read(purchases)
        decisions, planned = [], []
        for purchase in purchases:
            decision = known.get(purchase.id)
            if decision is None:
                step = self._plan(purchase, state, now)
                planned.append(step)
                decision = known[purchase.id] = step.decision
            decisions.append(decision)
        self._commit(planned)
        emptied = {key[1] for key in {p.section for p in planned} if state.remaining[key] == 0}
        return DecidedBatch(decisions, emptied)

    def _read(self, purchases: Sequence[Purchase]) -> tuple[dict[str, Decision], _State]:
        keys = [{"pk": s(f"PUR#{p.id}"), "sk": s("#DECISION")} for p in purchases]
        sections = sorted({(p.event_id, p.request.section) for p in purchases})
        keys += [{"pk": s(f"EV#{e}"), "sk": s(f"SEC#{name}")} for e, name in sections]
        known, state = {}, _State()
        for item in batch_get(self.client, self.table, keys):
            pk = text(item, "pk")
            if pk.startswith("PUR#"):
                decision = codec.decision_from(item)
                known[decision.purchase_id] = decision
            else:
                state.remaining[(pk[3:], text(item, "sk")[4:])] = num(item, "remaining")
        return known, state

    def _plan(self, purchase: Purchase, state: _State, now: datetime) -> _Planned:
        request = purchase.request
        event = self._event(purchase.event_id)
        section = event.section(request.section)
        if section is None:
            raise StoreError(f"event {event.id} has no section {request.section!r}")
        key = (event.id, section.name)
        labels, taken_seat = self._labels(purchase, section, state)
        if taken_seat or state.remaining.get(key, 0) < request.quantity:
            reason = Reason.SEAT_TAKEN if taken_seat else Reason.SOLD_OUT
            decision = Decision(purchase.id, PurchaseStatus.REJECTED, reason)
            return _Planned(purchase, decision, [self._put(decision, purchase)], key, 0)
        order = make_order(
            codec.order_id_for(purchase.id), event.id, purchase.id, request, labels, now
        )
        decision = Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order)
        state.remaining[key] -= request.quantity
        seats = state.seats.get(key, {})
        actions = [self._put(decision, purchase)]
        for label in labels:
            seats[label][1] = True
            actions.append(self._take_seat(key, seats[label][0], purchase.id))
        return _Planned(purchase, decision, actions, key, request.quantity)

    def _labels(
        self, purchase: Purchase, section: Section, state: _State
    ) -> tuple[tuple[str, ...], bool]:
        """The seats a request would take, and whether a named one is already sold."""
        if not section.seats:
            return (), False
        seats = self._seat_state(purchase.event_id, section.name, state)
        request = purchase.request
        if request.seats:
            labels = tuple(sorted(request.seats, key=section.seats.index))
            return labels, any(seats[label][1] for label in labels)
        free = [label for label in section.seats if not seats[label][1]]
        return tuple(free[: request.quantity]), False

    def _seat_state(self, event_id: str, name: str, state: _State) -> dict[str, list[Any]]:
        key = (event_id, name)
        if key not in state.seats:
            items = self.seats(event_id, name)
            state.seats[key] = {text(i, "label"): [text(i, "sk"), "owner" in i] for i in items}
        return state.seats[key]

    def seats(self, event_id: str, section: str) -> list[Item]:
        """A reserved section's seat items, in the section's order (strongly consistent)."""
        return query_all(
            self.client,
            self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(f"SEAT#{event_id}#{section}")},
            ConsistentRead=True,
        )

    def _event(self, event_id: str) -> Event:
        event = self._events.get(event_id)
        if event is None:
            answer = self.client.get_item(
                TableName=self.table,
                Key={"pk": s(f"EV#{event_id}"), "sk": s("#EVENT")},
                ConsistentRead=True,
            )
            if "Item" not in answer:
                raise StoreError(f"event {event_id} does not exist")
            event = self._events[event_id] = codec.unpack_event(answer["Item"]["def"]["B"], False)
        return event

    def _put(self, decision: Decision, purchase: Purchase) -> dict[str, Any]:
        item = codec.decision_item(decision, purchase.event_id, purchase.position)
        return {
            "Put": {
                "TableName": self.table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _take_seat(self, key: SectionKey, sk: str, purchase_id: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": s(f"SEAT#{key[0]}#{key[1]}"), "sk": s(sk)},
                "UpdateExpression": "SET #o = :p",
                "ConditionExpression": "attribute_exists(label) AND attribute_not_exists(#o)",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":p": s(purchase_id)},
            }
        }

    def _commit(self, planned: list[_Planned]) -> None:
        """Write the plan in transactions of at most 100 actions, in order."""
        actions: list[dict[str, Any]] = []
        taken: Counter[SectionKey] = Counter()
        for step in planned:
            counters = len(taken) + (step.taken > 0 and step.section not in taken)
            if actions and len(actions) + len(step.actions) + counters > MAX_TRANSACT_ITEMS:
                self._run(actions, taken)
                actions, taken = [], Counter()
            actions += step.actions
            if step.taken:
                taken[step.section] += step.taken
        if actions:
            self._run(actions, taken)

    def _run(self, actions: list[dict[str, Any]], taken: Counter[SectionKey]) -> None:
        counters = [self._take_stock(key, quantity) for key, quantity in sorted(taken.items())]
        if transact(self.client, actions + counters) is not None:
            raise _Lost

    def _take_stock(self, key: SectionKey, quantity: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": s(f"EV#{key[0]}"), "sk": s(f"SEC#{key[1]}")},
                "UpdateExpression": "SET remaining = remaining - :q",
                "ConditionExpression": "remaining >= :q",
                "ExpressionAttributeValues": {":q": n(quantity)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
