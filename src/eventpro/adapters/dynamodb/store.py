"""`DynamoInventoryStore`: events, stock, seats and decisions in one DynamoDB table.

Items of `<prefix>-inventory` (pk, sk):

- `EV#<event>`, `#EVENT`: the compressed definition, `paused`, `seq`;
- `EV#<event>`, `SEC#<section>`: `remaining`, the section's counter;
- `SEAT#<event>#<section>`, `<index>`: a seat `label`, and its `owner` once sold;
- `PUR#<purchase>`, `#DECISION`: a decision and its order; a confirmed one carries `opk`
  (event) and `opos` (position) for the sparse `orders` index, in allocation order;
- `EVENTS`, `<seq>`: the event list, newest first; `SEQ`, `EVENTS`: its counter.

Deciding a batch is in `decide.py`: one transaction per up to 100 actions, the section
counters taken with `remaining >= :sum`, each decision written once (`attribute_not_exists`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import botocore.exceptions

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import (
    MAX_BATCH_GET_KEYS,
    MAX_DEFINITION_BYTES,
    Item,
    Target,
    batch_get,
    batch_write,
    chunks,
    error_code,
    mapped_errors,
    n,
    num,
    ping,
    query_all,
    s,
    text,
)
from eventpro.adapters.dynamodb.decide import MAX_SEATS_PER_PURCHASE, Decider
from eventpro.adapters.dynamodb.schema import ORDERS_INDEX, STORE
from eventpro.domain.errors import InvalidEvent
from eventpro.domain.model import DecidedBatch, Event, Inventory, Order, Purchase
from eventpro.ports import Conflict, InventoryStore, Page


def cursor_number(cursor: str | None, default: int = 0) -> int:
    if cursor is None:
        return default
    if not cursor.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(cursor)


class DynamoInventoryStore(InventoryStore):
    capabilities = frozenset({"durable", "shared"})

    def __init__(self, target: Target) -> None:
        self.target = target
        self.table = target.table(STORE)
        self.client: Any = target.client()
        self._decider = Decider(self.client, self.table)
        self.ping()  # fail at start, not at the first sale, if the table is missing

    def create_event(self, event: Event) -> None:
        _check_fits(event)
        blob = codec.pack_event(event)
        if len(blob) > MAX_DEFINITION_BYTES:
            raise InvalidEvent("the event's definition is too large for DynamoDB", field="sections")
        with mapped_errors():
            if self._get(f"EV#{event.id}", "#EVENT") is not None:
                raise Conflict(f"event {event.id} exists")
            # counters and seats first: a crash before the event item leaves them unseen
            batch_write(
                self.client, self.table, [{"PutRequest": {"Item": i}} for i in _stock_items(event)]
            )
            seq = self.client.update_item(
                TableName=self.table,
                Key={"pk": s("SEQ"), "sk": s("EVENTS")},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": n(1)},
                ReturnValues="UPDATED_NEW",
            )["Attributes"]["n"]["N"]
            self._put_event(event, blob, int(seq))

    def _put_event(self, event: Event, blob: bytes, seq: int) -> None:
        head: Item = {"pk": s(f"EV#{event.id}"), "sk": s("#EVENT"), "def": {"B": blob}}
        head |= {"paused": {"BOOL": event.paused}, "seq": n(seq)}
        listed: Item = {"pk": s("EVENTS"), "sk": s(f"{seq:020d}"), "event_id": s(event.id)}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": head,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": listed}},
                ]
            )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise Conflict(f"event {event.id} exists") from exc
            raise

    def _get(self, pk: str, sk: str) -> Item | None:
        answer = self.client.get_item(
            TableName=self.table, Key={"pk": s(pk), "sk": s(sk)}, ConsistentRead=True
        )
        found: Item | None = answer.get("Item")
        return found

    def get_inventory(self, event_id: str) -> Inventory | None:
        with mapped_errors():
            items = query_all(
                self.client,
                self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(f"EV#{event_id}")},
                ConsistentRead=True,
            )
        head = next((i for i in items if text(i, "sk") == "#EVENT"), None)
        if head is None:
            return None
        event = codec.unpack_event(head["def"]["B"], head["paused"]["BOOL"])
        counters = {text(i, "sk")[4:]: num(i, "remaining") for i in items if i is not head}
        return Inventory(event, {x.name: counters.get(x.name, 0) for x in event.sections})

    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        before = cursor_number(cursor, 10**20 - 1)
        with mapped_errors():
            answer = self.client.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND sk < :before",
                ExpressionAttributeValues={":pk": s("EVENTS"), ":before": s(f"{before:020d}")},
                ScanIndexForward=False,
                Limit=limit + 1,
                ConsistentRead=True,
            )
            listed = answer["Items"][:limit]
            heads = self._heads([text(i, "event_id") for i in listed])
        events = [heads[text(i, "event_id")] for i in listed if text(i, "event_id") in heads]
        more = len(answer["Items"]) > limit
        return Page(events, str(int(text(listed[-1], "sk"))) if more else None)

    def _heads(self, event_ids: list[str]) -> dict[str, Event]:
        found: dict[str, Event] = {}
        for group in chunks(event_ids, MAX_BATCH_GET_KEYS):
            keys = [{"pk": s(f"EV#{e}"), "sk": s("#EVENT")} for e in group]
            for item in batch_get(self.client, self.table, keys):
                event = codec.unpack_event(item["def"]["B"], item["paused"]["BOOL"])
                found[event.id] = event
        return found

    def set_paused(self, event_id: str, paused: bool) -> bool:
        try:
            with mapped_errors():
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": s(f"EV#{event_id}"), "sk": s("#EVENT")},
                    UpdateExpression="SET paused = :p",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":p": {"BOOL": paused}},
                )
        except Conflict:
            return False
        return True

    def seat_map(self, event_id: str, section: str) -> list[tuple[str, bool]]:
        with mapped_errors():
            items = self._decider.seats(event_id, section)
        return [(text(i, "label"), "owner" not in i) for i in items]

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        """Decide in order, atomically per transaction of up to 100 actions, never twice:
        each decision is written with `attribute_not_exists`, in the same transaction as the
        counter and seat updates it implies, so a redelivered purchase takes nothing."""
        with mapped_errors():
            return self._decider.decide(purchases, now)

    def get_order(self, order_id: str) -> Order | None:
        with mapped_errors():
            item = self._get(f"PUR#{codec.purchase_id_for(order_id)}", "#DECISION")
        if item is None or "order" not in item:
            return None
        order = codec.order_from(item)
        return order if order.id == order_id else None

    def list_orders(self, event_id: str, limit: int, cursor: str | None) -> Page[Order]:
        after = cursor_number(cursor)
        with mapped_errors():
            answer = self.client.query(
                TableName=self.table,
                IndexName=ORDERS_INDEX,
                KeyConditionExpression="opk = :e AND opos > :after",
                ExpressionAttributeValues={":e": s(event_id), ":after": n(after)},
                Limit=limit + 1,
            )
        items = answer["Items"]
        orders = [codec.order_from(i) for i in items[:limit]]
        more = len(items) > limit
        return Page(orders, str(num(items[limit - 1], "opos")) if more else None)

    def ping(self) -> None:
        ping(self.client, self.table, "EV#ping")

    def close(self) -> None:
        self.client.close()


def _check_fits(event: Event) -> None:
    """A purchase of reserved seats is one transaction: its seats, the counter, the decision."""
    if any(x.seats for x in event.sections) and event.per_buyer_limit > MAX_SEATS_PER_PURCHASE:
        raise InvalidEvent(
            f"with reserved seats, per_buyer_limit is at most {MAX_SEATS_PER_PURCHASE} on"
            " DynamoDB (one transaction holds at most 100 actions)",
            field="per_buyer_limit",
        )


def _stock_items(event: Event) -> list[Item]:
    items: list[Item] = []
    for x in event.sections:
        items.append(
            {"pk": s(f"EV#{event.id}"), "sk": s(f"SEC#{x.name}"), "remaining": n(x.capacity)}
        )
        pk = s(f"SEAT#{event.id}#{x.name}")
        items += [
            {"pk": pk, "sk": s(f"{i:06d}"), "label": s(label)} for i, label in enumerate(x.seats)
        ]
    return items
