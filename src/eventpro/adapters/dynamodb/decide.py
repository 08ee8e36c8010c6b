"""Deciding a batch on DynamoDB: plan in memory from fresh counters, commit in transactions.

1. Read, strongly consistent, in one BatchGetItem per 100 keys: the decisions already
   stored for the batch (a redelivery) and the counters of the sections it asks for.
2. Decide the undecided purchases in order with the domain's `allocate_batch`, as every
   store does (first come, first served; a later smaller request may take what a larger
   earlier one could not).
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
from eventpro.domain.allocation import SectionStock, StockKey, allocate_batch
from eventpro.domain.model import DecidedBatch, Decision, Event, Purchase
from eventpro.ports import StoreError, Unavailable

# One purchase of named seats is one transaction: its seats, its decision, the counter.
MAX_SEATS_PER_PURCHASE = MAX_TRANSACT_ITEMS - 2


class _Lost(Exception):
    """A transaction was cancelled: plan the batch again from fresh reads."""


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
        known, remaining = self._read(purchases)
        new = list({p.id: p for p in purchases if p.id not in known}.values())
        stocks = {key: self._stock(key, left) for key, left in remaining.items()}
        order_ids = [codec.order_id_for(p.id) for p in new]  # the same in every retry
        batch = allocate_batch(new, stocks, order_ids, now)
        self._commit(new, batch.decisions)
        known |= {d.purchase_id: d for d in batch.decisions}
        return DecidedBatch([known[p.id] for p in purchases], batch.emptied_sections)

    def _read(
        self, purchases: Sequence[Purchase]
    ) -> tuple[dict[str, Decision], dict[StockKey, int]]:
        """The decisions already stored for the batch, and its sections' counters."""
        keys = [{"pk": s(f"PUR#{p.id}"), "sk": s("#DECISION")} for p in purchases]
        sections = sorted({(p.event_id, p.request.section) for p in purchases})
        keys += [{"pk": s(f"EV#{e}"), "sk": s(f"SEC#{name}")} for e, name in sections]
        known, remaining = {}, dict.fromkeys(sections, 0)
        for item in batch_get(self.client, self.table, keys):
            pk = text(item, "pk")
            if pk.startswith("PUR#"):
                decision = codec.decision_from(item)
                known[decision.purchase_id] = decision
            else:
                remaining[(pk[3:], text(item, "sk")[4:])] = num(item, "remaining")
        return known, remaining

    def _stock(self, key: StockKey, remaining: int) -> SectionStock:
        """A section's stock: its counter and, if reserved, its free seats in order."""
        section = self._event(key[0]).section(key[1])
        if section is None:
            raise StoreError(f"event {key[0]} has no section {key[1]!r}")
        if not section.seats:
            return SectionStock(remaining)
        # seat items come in the section's order: their sort key is the seat's place
        items = self.seats(*key)
        return SectionStock(
            remaining, {text(i, "label"): int(text(i, "sk")) for i in items if "owner" not in i}
        )

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

    def _actions(self, purchase: Purchase, decision: Decision) -> list[dict[str, Any]]:
        """The decision's `Put` and, if it took seats, each seat's conditional `Update`."""
        actions = [self._put(decision, purchase)]
        if decision.order is not None and decision.order.seats:
            section = self._event(purchase.event_id).section(purchase.request.section)
            assert section is not None
            place = {label: i for i, label in enumerate(section.seats)}
            for label in decision.order.seats:
                actions.append(self._take_seat(purchase, f"{place[label]:06d}"))
        return actions

    def _put(self, decision: Decision, purchase: Purchase) -> dict[str, Any]:
        item = codec.decision_item(decision, purchase.event_id, purchase.position)
        return {
            "Put": {
                "TableName": self.table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _take_seat(self, purchase: Purchase, sk: str) -> dict[str, Any]:
        pk = f"SEAT#{purchase.event_id}#{purchase.request.section}"
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": s(pk), "sk": s(sk)},
                "UpdateExpression": "SET #o = :p",
                "ConditionExpression": "attribute_exists(label) AND attribute_not_exists(#o)",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":p": s(purchase.id)},
            }
        }

    def _commit(self, purchases: list[Purchase], decisions: list[Decision]) -> None:
        """Write the decisions in transactions of at most 100 actions, in order."""
        actions: list[dict[str, Any]] = []
        taken: Counter[StockKey] = Counter()
        for purchase, decision in zip(purchases, decisions, strict=True):
            own = self._actions(purchase, decision)
            key = (purchase.event_id, purchase.request.section)
            quantity = purchase.request.quantity if decision.order is not None else 0
            counters = len(taken) + (quantity > 0 and key not in taken)
            if actions and len(actions) + len(own) + counters > MAX_TRANSACT_ITEMS:
                self._run(actions, taken)
                actions, taken = [], Counter()
            actions += own
            if quantity:
                taken[key] += quantity
        if actions:
            self._run(actions, taken)

    def _run(self, actions: list[dict[str, Any]], taken: Counter[StockKey]) -> None:
        counters = [self._take_stock(key, quantity) for key, quantity in sorted(taken.items())]
        if transact(self.client, actions + counters) is not None:
            raise _Lost

    def _take_stock(self, key: StockKey, quantity: int) -> dict[str, Any]:
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
