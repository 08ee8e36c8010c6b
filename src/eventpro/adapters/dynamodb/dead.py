"""Dead letters of the DynamoDB line: bury a request, list them, redrive them.

A dead letter is the item `DEAD`, `<event>#<position>`; burying moves the request out of
the line (and out of `pending`, so an event with only dead letters is not leased) in one
transaction, and redrive moves it back at its original position with its attempts reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from msgspec.structs import replace

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import (
    MAX_TRANSACT_ITEMS,
    Item,
    batch_get,
    chunks,
    n,
    num,
    s,
    text,
    transact,
    transact_each,
)
from eventpro.domain.model import PurchaseStatus
from eventpro.ports import DeadLetter, Delivery, Page

# The line's counters: out of (or back in) `pending`, and one more dead letter made or
# redriven, a count that only grows (see `DynamoQueue.line_mark`).
BURIED = "ADD pending :minus, dead_moves :one"
REDRIVEN = "ADD pending :plus, dead_moves :one"


def _key(pk: str, sk: str) -> Item:
    return {"pk": s(pk), "sk": s(sk)}


def dead_key(event_id: str, position: int) -> str:
    return f"{event_id}#{codec.position_key(position)}"


class DeadLetters:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def bury(self, delivery: Delivery, error: str, now: datetime) -> bool:
        """Move a request from the line to the dead letters; False if it left the line."""
        purchase = replace(delivery.purchase, status=PurchaseStatus.FAILED)
        position = purchase.position or 0
        item = codec.entry_item(purchase)
        item |= {"pk": s("DEAD"), "sk": s(dead_key(purchase.event_id, position))}
        item |= {"attempts": n(delivery.attempt), "last_error": s(error)}
        item["failed_at"] = s(now.isoformat())
        actions = [
            self._delete(f"L#{purchase.event_id}", codec.position_key(position)),
            {"Put": {"TableName": self.table, "Item": item}},
            self._status(purchase.id, PurchaseStatus.FAILED),
            self._state(purchase.event_id, f"{BURIED} DELETE held :p", -1, position),
        ]
        return transact(self.client, actions) is None

    def _delete(self, pk: str, sk: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table,
                "Key": _key(pk, sk),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }

    def _status(self, purchase_id: str, status: PurchaseStatus) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key(f"PUR#{purchase_id}", "#"),
                "UpdateExpression": "SET #st = :st",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": {":st": s(status.value)},
            }
        }

    def _state(
        self, event_id: str, expression: str, count: int, position: int | None = None
    ) -> dict[str, Any]:
        values: Item = {":minus" if count < 0 else ":plus": n(count), ":one": n(1)}
        if position is not None:
            values[":p"] = {"NS": [str(position)]}
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key("LINE", event_id),
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }

    def page(self, event_id: str | None, limit: int, cursor: str | None) -> Page[DeadLetter]:
        """Dead letters by event and position, `limit` at a time after `cursor`."""
        if cursor is not None and "#" not in cursor:
            raise ValueError(f"invalid cursor {cursor!r}")
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": s("DEAD")},
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        if event_id is not None:  # "~" sorts after every position digit
            request["KeyConditionExpression"] += " AND sk BETWEEN :low AND :high"
            request["ExpressionAttributeValues"] |= {
                ":low": s(f"{event_id}#"),
                ":high": s(f"{event_id}#~"),
            }
        if cursor is not None:
            request["ExclusiveStartKey"] = _key("DEAD", cursor)
        items = self.client.query(TableName=self.table, **request)["Items"]
        letters = [
            DeadLetter(
                codec.purchase_from(i),
                num(i, "attempts"),
                text(i, "last_error"),
                datetime.fromisoformat(text(i, "failed_at")),
            )
            for i in items[:limit]
        ]
        more = len(items) > limit
        return Page(letters, text(items[limit - 1], "sk") if more else None)

    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        """Put dead letters back in line at their positions; return how many moved."""
        found = {text(i, "sk"): i for i in self._chosen(event_id, purchase_ids)}
        moved = 0
        per_chunk = (MAX_TRANSACT_ITEMS - 1) // 3
        for group in chunks(sorted(found.values(), key=lambda i: text(i, "sk")), per_chunk):
            for event, members in _by_event(group).items():
                done = transact_each(self.client, members, lambda g, e=event: self._back(e, g))
                moved += len(done)
        return moved

    def _chosen(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> list[Item]:
        items: list[Item] = []
        if event_id is not None:
            cursor = None
            while True:
                page = self.client.query(
                    TableName=self.table,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
                    ExpressionAttributeValues={":pk": s("DEAD"), ":e": s(f"{event_id}#")},
                    ConsistentRead=True,
                    **({"ExclusiveStartKey": cursor} if cursor else {}),
                )
                items += page["Items"]
                if (cursor := page.get("LastEvaluatedKey")) is None:
                    break
        if purchase_ids:
            keys = [_key(f"PUR#{p}", "#") for p in purchase_ids]
            records = batch_get(self.client, self.table, keys)
            failed = [r for r in records if text(r, "status") == PurchaseStatus.FAILED.value]
            dead = [_key("DEAD", dead_key(text(r, "lpk"), num(r, "position"))) for r in failed]
            items += batch_get(self.client, self.table, dead) if dead else []
        return items

    def _back(self, event_id: str, group: list[Item]) -> list[dict[str, Any]]:
        deletes = [self._delete("DEAD", text(i, "sk")) for i in group]
        puts, records = [], []
        for item in group:
            purchase = replace(codec.purchase_from(item), status=PurchaseStatus.QUEUED)
            entry = codec.entry_item(purchase) | {"att": n(-1)}  # never delivered, again
            puts.append({"Put": {"TableName": self.table, "Item": entry}})
            records.append(self._status(purchase.id, PurchaseStatus.QUEUED))
        state = self._state(event_id, REDRIVEN, len(group))
        return [*deletes, *puts, *records, state]


def _by_event(items: list[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = {}
    for item in items:
        grouped.setdefault(text(item, "event"), []).append(item)
    return grouped
