"""The line's leases on DynamoDB, by the caller's clock: lease, complete, fail, redrive.

An event's lease lives on its `LINE` state item: `lease_id`, `leased_until`, the `held`
positions of the current lease's batch, `leased_through` (its last position) and
`delivered_through` (the highest position ever leased). Taking a lease is one write
conditioned on the `version` read, so two workers never both take an event. A request's
delivery count needs no write when it is first leased: it is `att + 1`, plus one if its
position was delivered before (`<= delivered_through`); only retried requests get `att`
written, in the same transaction as the lease.

Completing deletes each line entry with `attribute_exists` in the transaction that records
its decision and adjusts the counters, so a request is counted decided exactly once, also
when a stale worker completes it a second time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import (
    MAX_TRANSACT_ITEMS,
    Item,
    chunks,
    n,
    num,
    query_all,
    s,
    text,
    transact,
    transact_each,
)
from eventpro.adapters.dynamodb.dead import DeadLetters
from eventpro.domain.model import Decision, Purchase, PurchaseStatus
from eventpro.ports import DeadLetter, Delivery, IdSource, Page

# Ready events looked at by one fresh lease before it gives up (others may hold them).
LEASE_CANDIDATES = 3


def _key(pk: str, sk: str) -> Item:
    return {"pk": s(pk), "sk": s(sk)}


class Leases:
    def __init__(self, client: Any, table: str, ids: IdSource) -> None:
        self.client, self.table, self.ids = client, table, ids
        self.dead = DeadLetters(client, table)

    def _state(self, event_id: str) -> Item:
        answer = self.client.get_item(
            TableName=self.table, Key=_key("LINE", event_id), ConsistentRead=True
        )
        found: Item = answer.get("Item", {})
        return found

    def _entries(self, event_id: str, condition: str, value: int, limit: int) -> list[Item]:
        request: dict[str, Any] = {
            "KeyConditionExpression": f"pk = :pk AND sk {condition} :at",
            "ExpressionAttributeValues": {
                ":pk": s(f"L#{event_id}"),
                ":at": s(codec.position_key(value)),
            },
            "ConsistentRead": True,
        }
        if limit:
            answer = self.client.query(TableName=self.table, Limit=limit, **request)
            found: list[Item] = answer["Items"]
            return found
        return query_all(self.client, self.table, **request)

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None
    ) -> list[Delivery]:
        # times by the caller's clock, in integer milliseconds
        until = round((now.timestamp() + visibility_timeout) * 1000)
        if after is not None:
            return self._continue(after, max_items, until)
        states = query_all(
            self.client,
            self.table,
            KeyConditionExpression="pk = :pk",
            FilterExpression="pending > :zero AND (attribute_not_exists(leased_until)"
            " OR leased_until <= :now)",
            ExpressionAttributeValues={
                ":pk": s("LINE"),
                ":zero": n(0),
                ":now": n(round(now.timestamp() * 1000)),
            },
            ConsistentRead=True,
        )
        states.sort(key=lambda st: (num(st, "last_leased"), text(st, "sk")))
        for state in states[:LEASE_CANDIDATES]:
            entries = self._entries(text(state, "sk"), ">", 0, max_items)
            if not entries:
                # counted as pending but nothing in line (positions taken by an admission
                # that died before writing them): to the back, so it starves no other event
                self._to_the_back(text(state, "sk"))
                continue
            taken = self._take(state, entries, until)
            if taken is not None:
                return taken
        return []

    def _to_the_back(self, event_id: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=_key("LINE", event_id),
            UpdateExpression="SET last_leased = :t",
            ExpressionAttributeValues={":t": n(time.time_ns() // 1_000_000)},
        )

    def _continue(self, after: str, max_items: int, until: int) -> list[Delivery]:
        event_id = after.rpartition("@")[2]
        state = self._state(event_id)
        if text(state, "lease_id") != after:
            return []
        through = num(state, "leased_through")
        held = {int(p) for p in state.get("held", {}).get("NS", [])}
        below = self._entries(event_id, "<=", through, 0)
        if any(num(e, "position") not in held for e in below):
            return []  # retried, redriven or still out with an earlier batch
        entries = self._entries(event_id, ">", through, max_items)
        return (self._take(state, entries, until) or []) if entries else []

    def _take(self, state: Item, entries: list[Item], until: int) -> list[Delivery] | None:
        """Make `entries` (in position order) the event's lease; None if the state changed."""
        event_id = text(state, "sk")
        delivered = num(state, "delivered_through")
        retried = [e for e in entries if num(e, "position") <= delivered]  # a prefix
        if len(retried) >= MAX_TRANSACT_ITEMS:  # the lease and each retry in one transaction
            entries = retried = retried[: MAX_TRANSACT_ITEMS - 1]
        lease_id = f"{self.ids.new('lease')}@{event_id}"
        update = self._lease_update(state, lease_id, entries, until)
        bumps = [self._bump(event_id, e) for e in retried]
        if transact(self.client, [update, *bumps]) is not None:
            return None
        return [
            Delivery(
                codec.purchase_from(e),
                num(e, "att") + (2 if num(e, "position") <= delivered else 1),
                lease_id,
            )
            for e in entries
        ]

    def _lease_update(
        self, state: Item, lease_id: str, entries: list[Item], until: int
    ) -> dict[str, Any]:
        """The state's new lease, conditioned on the version read (no one else took it)."""
        version, delivered = num(state, "version"), num(state, "delivered_through")
        last = num(entries[-1], "position")
        values = {
            ":l": s(lease_id), ":u": n(until), ":t": n(time.time_ns() // 1_000_000),
            ":last": n(last), ":d": n(max(delivered, last)), ":one": n(1), ":v": n(version),
            ":held": {"NS": [str(num(e, "position")) for e in entries]},
        }  # fmt: skip
        condition = "version = :v"
        if version == 0:
            condition = "attribute_not_exists(version) OR version = :v"
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key("LINE", text(state, "sk")),
                "UpdateExpression": "SET lease_id = :l, leased_until = :u, last_leased = :t,"
                " leased_through = :last, delivered_through = :d, held = :held ADD version :one",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }

    def _bump(self, event_id: str, entry: Item) -> dict[str, Any]:
        """A retried request's delivery count goes up by one with its new lease."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key(f"L#{event_id}", text(entry, "sk")),
                "UpdateExpression": "ADD att :one",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":one": n(1)},
            }
        }

    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        by_id = {d.purchase_id: d for d in decisions}
        per_chunk = (MAX_TRANSACT_ITEMS - 1) // 3  # entry, log record, buyer; plus the state
        for group in chunks(list(deliveries), per_chunk):
            self._complete(group, by_id)
        for lease_id in dict.fromkeys(d.lease_id for d in deliveries):
            self._release(lease_id)

    def _complete(self, group: list[Delivery], by_id: dict[str, Decision]) -> None:
        # an entry already gone was completed before: it is left out, the rest commit
        transact_each(self.client, group, lambda members: self._completion(members, by_id))

    def _completion(self, group: list[Delivery], by_id: dict[str, Decision]) -> list[Any]:
        event_id = group[0].purchase.event_id
        deletes, records = [], []
        given_back: dict[str, list[Purchase]] = {}
        for delivery in group:
            purchase, decision = delivery.purchase, by_id[delivery.purchase.id]
            deletes.append(self._delete_entry(event_id, purchase.position or 0))
            records.append(self._record(purchase.id, decision))
            if decision.status is PurchaseStatus.REJECTED:
                given_back.setdefault(purchase.buyer_id, []).append(purchase)
        buyers = [self._give_back(event_id, b, ps) for b, ps in sorted(given_back.items())]
        positions = [str(d.purchase.position) for d in group]
        state = self._state_update(
            event_id,
            "ADD #depth :minus, pending :minus, decided :k DELETE held :ps",
            {":minus": n(-len(group)), ":k": n(len(group)), ":ps": {"NS": positions}},
        )
        return [*deletes, *records, *buyers, state]

    def _delete_entry(self, event_id: str, position: int) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table,
                "Key": _key(f"L#{event_id}", codec.position_key(position)),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }

    def _record(self, purchase_id: str, decision: Decision) -> dict[str, Any]:
        order_id = decision.order.id if decision.order else ""
        reason = decision.reason.value if decision.reason else ""
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key(f"PUR#{purchase_id}", "#"),
                "UpdateExpression": "SET #st = :st, reason = :r, order_id = :o",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": {
                    ":st": s(decision.status.value),
                    ":r": s(reason),
                    ":o": s(order_id),
                },
            }
        }

    def _give_back(self, event_id: str, buyer: str, rejected: list[Purchase]) -> dict[str, Any]:
        """A rejected buyer's tickets leave their count (and the purchases it holds)."""
        quantity = sum(p.request.quantity for p in rejected)
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key(f"H#{event_id}", buyer),
                "UpdateExpression": "ADD held :minus DELETE pids :ps",
                "ExpressionAttributeValues": {
                    ":minus": n(-quantity),
                    ":ps": {"SS": [p.id for p in rejected]},
                },
            }
        }

    def _state_update(self, event_id: str, expression: str, values: Item) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key("LINE", event_id),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": {"#depth": "depth"},
                "ExpressionAttributeValues": values,
            }
        }

    def _release(self, lease_id: str) -> None:
        """End the event's lease if it is `lease_id` and none of its requests is out."""
        event_id = lease_id.rpartition("@")[2]
        # when another lease is current, or requests of this one are still out: nothing
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key=_key("LINE", event_id),
                UpdateExpression="SET leased_until = :zero REMOVE lease_id ADD version :one",
                ConditionExpression="lease_id = :l AND attribute_not_exists(held)",
                ExpressionAttributeValues={":zero": n(0), ":one": n(1), ":l": s(lease_id)},
            )

    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        """Give the request back to the line, or bury it at `max_attempts`."""
        purchase = delivery.purchase
        if delivery.attempt >= max_attempts:
            moved = self.dead.bury(delivery, error, now)
        else:
            moved = False
            self.client.update_item(
                TableName=self.table,
                Key=_key("LINE", purchase.event_id),
                UpdateExpression="DELETE held :p",
                ExpressionAttributeValues={":p": {"NS": [str(purchase.position)]}},
            )
        self._release(delivery.lease_id)
        return moved

    def dead_letters(
        self, event_id: str | None, limit: int, cursor: str | None
    ) -> Page[DeadLetter]:
        return self.dead.page(event_id, limit, cursor)

    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        return self.dead.redrive(event_id, purchase_ids)
