"""`DynamoQueue`: admission, the line and its log in DynamoDB, exact with many API processes.

Items of `<prefix>-line` (pk, sk):

- `LINE`, `<event>`: the event's line state: `next_position`, `next_seq`, `depth`
  (admitted, undecided), `pending` (of those, not dead), `decided`, `sold_out` (a string
  set), and the lease (`lease_id`, `leased_until` by the caller's clock, `held` positions,
  `leased_through`, `delivered_through`, `version`);
- `L#<event>`, `<position>`: an undecided request in line, with `att` (extra deliveries);
- `PUR#<purchase>`, `#`: the admission log's record (status, reason, order id), listed by
  event in arrival order through the index `log` (`lpk`, `lseq`);
- `H#<event>`, `<buyer>`: tickets the buyer holds in line or confirmed (`held`);
- `K#<event>`, `<idempotency key>`: the purchase it named, expiring by TTL (`expires_at`);
- `DEAD`, `<event>#<position>`: a dead letter.

Each step is a conditional write or an atomic `ADD`, so several API processes and workers
share one line: positions come from one `ADD next_position :n` per group (UPDATED_NEW),
a buyer's count from a conditional `ADD`, an idempotency key from a conditional `Put`.
Leases, completion, dead letters and redrive are in `lease.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import (
    Item,
    Target,
    batch_write,
    mapped_errors,
    n,
    num,
    s,
)
from eventpro.adapters.dynamodb.lease import Leases
from eventpro.adapters.dynamodb.schema import LINE, LOG_INDEX
from eventpro.adapters.dynamodb.store import cursor_number
from eventpro.domain.model import Decision, Purchase, PurchaseStatus, Reason
from eventpro.ports import (
    Admission,
    Admitted,
    DeadLetter,
    Delivery,
    IdSource,
    Page,
    PurchaseQueue,
    Unavailable,
)

KEY_TTL = timedelta(days=1)  # how long an Idempotency-Key is remembered
# A key claimed by another process whose purchase is not recorded yet: wait this long.
KEY_WAIT_SECONDS = 2.0


class DynamoQueue(PurchaseQueue):
    capabilities = frozenset({"shared"})

    def __init__(self, target: Target, ids: IdSource | None = None) -> None:
        self.target = target
        self.table = target.table(LINE)
        self.client: Any = target.client()
        self.leases = Leases(self.client, self.table, ids or IdSource())

    def _update(self, pk: str, sk: str, **request: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.update_item(
            TableName=self.table, Key={"pk": s(pk), "sk": s(sk)}, **request
        )
        return answer

    def _get(self, pk: str, sk: str) -> Item | None:
        answer = self.client.get_item(
            TableName=self.table, Key={"pk": s(pk), "sk": s(sk)}, ConsistentRead=True
        )
        found: Item | None = answer.get("Item")
        return found

    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        with mapped_errors():
            return self._admit(admissions)

    def _admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        outcome: list[Admitted | None] = [None] * len(admissions)
        seen: dict[tuple[str, str], int] = {}  # keys of this group: index of the first
        fresh: list[int] = []
        for i, a in enumerate(admissions):
            key = (a.event_id, a.idempotency_key) if a.idempotency_key is not None else None
            if key is not None and key in seen:
                continue  # answered below, from the first of the group
            if key is not None:
                seen[key] = i
                earlier = self._claim(a)
                if earlier is not None:
                    outcome[i] = _replayed(earlier, a)
                    continue
            fresh.append(i)
        self._record(admissions, fresh, outcome)
        for i, a in enumerate(admissions):
            if outcome[i] is None and a.idempotency_key is not None:
                first = outcome[seen[(a.event_id, a.idempotency_key)]]
                assert first is not None
                outcome[i] = _replayed(first.purchase, a)
        return [o for o in outcome if o is not None]

    def _claim(self, a: Admission) -> Purchase | None:
        """Claim the idempotency key for this purchase; or the purchase that holds it."""
        expires = int((a.received_at + KEY_TTL).timestamp())
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": s(f"K#{a.event_id}"),
                    "sk": s(str(a.idempotency_key)),
                    "purchase_id": s(a.purchase_id),
                    "expires_at": n(expires),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return None
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        found = self._get(f"K#{a.event_id}", str(a.idempotency_key))
        return self._wait_for(found["purchase_id"]["S"] if found else a.purchase_id)

    def _wait_for(self, purchase_id: str) -> Purchase:
        """The purchase another process is recording right now (its key came first)."""
        deadline = time.monotonic() + KEY_WAIT_SECONDS
        while time.monotonic() < deadline:
            found = self.get_purchase(purchase_id)
            if found is not None:
                return found
            time.sleep(0.02)
        raise Unavailable("dynamodb: an idempotency key's first request is still in progress")

    def _record(
        self, admissions: Sequence[Admission], fresh: list[int], outcome: list[Admitted | None]
    ) -> None:
        """Decide the rules for the fresh admissions, take positions, write it all down."""
        by_event: dict[str, list[int]] = {}
        for i in fresh:
            by_event.setdefault(admissions[i].event_id, []).append(i)
        writes: list[dict[str, Any]] = []
        for event_id, indexes in by_event.items():
            sold_out = self._sold_out(event_id)
            reasons = [self._reason(admissions[i], sold_out) for i in indexes]
            queued = sum(r is None for r in reasons)
            position, seq = self._take_positions(event_id, queued, len(indexes))
            for i, reason in zip(indexes, reasons, strict=True):
                if reason is None:
                    position += 1
                seq += 1
                purchase = _purchase(admissions[i], reason, position if reason is None else None)
                writes.append({"PutRequest": {"Item": codec.purchase_item(purchase, seq)}})
                if reason is None:
                    writes.append({"PutRequest": {"Item": codec.entry_item(purchase)}})
                outcome[i] = Admitted(purchase)
        batch_write(self.client, self.table, writes)

    def _sold_out(self, event_id: str) -> set[str]:
        state = self._get("LINE", event_id) or {}
        return set(state.get("sold_out", {}).get("SS", []))

    def _reason(self, a: Admission, sold_out: set[str]) -> Reason | None:
        if a.rejected_for is not None:
            return a.rejected_for
        if a.request.section in sold_out:
            return Reason.SOLD_OUT
        quantity = a.request.quantity
        try:
            self._update(
                f"H#{a.event_id}",
                a.request.buyer_id,
                UpdateExpression="ADD held :q",
                ConditionExpression="attribute_not_exists(held) OR held <= :most",
                ExpressionAttributeValues={
                    ":q": n(quantity),
                    ":most": n(a.per_buyer_limit - quantity),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return Reason.LIMIT_EXCEEDED
        return None

    def _take_positions(self, event_id: str, queued: int, admitted: int) -> tuple[int, int]:
        """Reserve `queued` positions and `admitted` log places; return the last before each."""
        new = self._update(
            "LINE",
            event_id,
            UpdateExpression=("ADD next_position :q, next_seq :a, #depth :q, pending :q"),
            ExpressionAttributeNames={"#depth": "depth"},
            ExpressionAttributeValues={":q": n(queued), ":a": n(admitted)},
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return num(new, "next_position") - queued, num(new, "next_seq") - admitted

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        with mapped_errors():
            return self.leases.lease(max_items, visibility_timeout, now, after)

    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        with mapped_errors():
            self.leases.complete(deliveries, decisions)

    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        with mapped_errors():
            return self.leases.fail(delivery, error, max_attempts, now)

    def mark_sold_out(self, event_id: str, sections: set[str]) -> None:
        if not sections:
            return
        with mapped_errors():
            self._update(
                "LINE",
                event_id,
                UpdateExpression="ADD sold_out :s",
                ExpressionAttributeValues={":s": {"SS": sorted(sections)}},
            )

    def get_purchase(self, purchase_id: str) -> Purchase | None:
        with mapped_errors():
            item = self._get(f"PUR#{purchase_id}", "#")
        return codec.purchase_from(item) if item else None

    def ahead(self, purchase: Purchase) -> int:
        """(position - 1) minus the event's decided requests: one read, O(1).

        Exact while decisions follow positions; a request that was retried or dead-lettered
        while later ones were decided sees a count that is low by those (floor 0).
        """
        if purchase.position is None:
            return 0
        with mapped_errors():
            state = self._get("LINE", purchase.event_id) or {}
        return max(0, purchase.position - 1 - num(state, "decided"))

    def depth(self, event_id: str) -> int:
        with mapped_errors():
            state = self._get("LINE", event_id) or {}
        return num(state, "depth")

    def list_purchases(
        self, event_id: str, status: PurchaseStatus | None, limit: int, cursor: str | None
    ) -> Page[Purchase]:
        after = cursor_number(cursor)
        request: dict[str, Any] = {
            "IndexName": LOG_INDEX,
            "KeyConditionExpression": "lpk = :e AND lseq > :after",
            "ExpressionAttributeValues": {":e": s(event_id), ":after": n(after)},
            "Limit": limit + 1,
        }
        if status is not None:
            request["FilterExpression"] = "#st = :st"
            request["ExpressionAttributeNames"] = {"#st": "status"}
            request["ExpressionAttributeValues"][":st"] = s(status.value)
        items: list[Item] = []
        with mapped_errors():
            while len(items) <= limit:
                answer = self.client.query(TableName=self.table, **request)
                items += answer["Items"]
                if "LastEvaluatedKey" not in answer:
                    break
                request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        chosen = items[:limit]
        more = len(items) > limit
        return Page(
            [codec.purchase_from(i) for i in chosen], str(num(chosen[-1], "lseq")) if more else None
        )

    def dead_letters(
        self, event_id: str | None, limit: int, cursor: str | None
    ) -> Page[DeadLetter]:
        with mapped_errors():
            return self.leases.dead_letters(event_id, limit, cursor)

    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        with mapped_errors():
            return self.leases.redrive(event_id, purchase_ids)

    def ping(self) -> None:
        with mapped_errors():
            self.client.describe_table(TableName=self.table)

    def close(self) -> None:
        self.client.close()


def _purchase(a: Admission, reason: Reason | None, position: int | None) -> Purchase:
    return Purchase(
        id=a.purchase_id,
        event_id=a.event_id,
        request=a.request,
        status=PurchaseStatus.REJECTED if reason else PurchaseStatus.QUEUED,
        position=position,
        reason=reason,
        created_at=a.received_at,
        idempotency_key=a.idempotency_key,
        request_hash=a.request_hash,
    )


def _replayed(earlier: Purchase, a: Admission) -> Admitted:
    mismatch = earlier.request_hash != a.request_hash
    return Admitted(earlier, replayed=not mismatch, key_mismatch=mismatch)
