"""Admission to the DynamoDB line: idempotency keys, the rules, positions, records.

A group of admissions costs one conditional `Put` per idempotency key, one conditional
`ADD held` per request that may queue, and per event one `GetItem` (sold-out flags and
counters), one `TransactWriteItems` that moves the counters from the values read (a
compare-and-set) and records the group's places, and `BatchWriteItem`s of the records
and line entries (25 a call). Several API processes admit at once: every step is
conditional, and none counts twice when botocore resends it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import (
    CONFLICT_RETRIES,
    Item,
    backoff,
    batch_write,
    n,
    num,
    s,
    transact,
)
from eventpro.domain.model import Purchase, PurchaseStatus, Reason
from eventpro.ports import Admission, Admitted, Unavailable

KEY_TTL = timedelta(days=1)  # how long an Idempotency-Key is remembered
# A key claimed by another process whose purchase is not recorded yet: wait this long.
KEY_WAIT_SECONDS = 2.0


class Admissions:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def update(self, pk: str, sk: str, **request: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.update_item(
            TableName=self.table, Key={"pk": s(pk), "sk": s(sk)}, **request
        )
        return answer

    def get(self, pk: str, sk: str) -> Item | None:
        answer = self.client.get_item(
            TableName=self.table, Key={"pk": s(pk), "sk": s(sk)}, ConsistentRead=True
        )
        found: Item | None = answer.get("Item")
        return found

    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
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
        found = self.get(f"K#{a.event_id}", str(a.idempotency_key))
        return self._wait_for(found["purchase_id"]["S"] if found else a.purchase_id)

    def _wait_for(self, purchase_id: str) -> Purchase:
        """The purchase another process is recording right now (its key came first)."""
        deadline = time.monotonic() + KEY_WAIT_SECONDS
        while time.monotonic() < deadline:
            item = self.get(f"PUR#{purchase_id}", "#")
            found = codec.purchase_from(item) if item else None
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
        for event_id, indexes in by_event.items():
            chosen = [admissions[i] for i in indexes]
            reasons, position, seq = self._rules_and_positions(event_id, chosen)
            writes: list[dict[str, Any]] = []
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

    def _rules_and_positions(
        self, event_id: str, chosen: list[Admission]
    ) -> tuple[list[Reason | None], int, int]:
        """Each admission's reason to be refused at once (or None: it queues), and the last
        position and log place before this group's. If this fails before the positions are
        taken, the buyer counts and key claims it made are given back (best effort)."""
        counted: list[Admission] = []
        try:
            state = self.get("LINE", event_id) or {}
            sold_out = set(state.get("sold_out", {}).get("SS", []))
            reasons = []
            for a in chosen:
                reasons.append(self._reason(a, sold_out))
                if reasons[-1] is None:
                    counted.append(a)
            queued = sum(r is None for r in reasons)
            group = chosen[0].purchase_id
            return (reasons, *self._take_positions(event_id, state, queued, len(chosen), group))
        except Exception:
            self._undo(counted, [a for a in chosen if a.idempotency_key is not None])
            raise

    def _undo(self, counted: list[Admission], claimed: list[Admission]) -> None:
        with contextlib.suppress(Exception):
            for a in counted:
                self.update(
                    f"H#{a.event_id}",
                    a.request.buyer_id,
                    UpdateExpression="ADD held :minus DELETE pids :p",
                    ExpressionAttributeValues={
                        ":minus": n(-a.request.quantity),
                        ":p": {"SS": [a.purchase_id]},
                    },
                )
            for a in claimed:
                self.client.delete_item(
                    TableName=self.table,
                    Key={"pk": s(f"K#{a.event_id}"), "sk": s(str(a.idempotency_key))},
                    ConditionExpression="purchase_id = :p",
                    ExpressionAttributeValues={":p": s(a.purchase_id)},
                )

    def _reason(self, a: Admission, sold_out: set[str]) -> Reason | None:
        """Refused at once, or None: the buyer's count now holds this request.

        The count remembers the purchases it holds (`pids`), so a call that botocore sends
        again after its answer was lost does not count a request twice.
        """
        if a.rejected_for is not None:
            return a.rejected_for
        if a.request.section in sold_out:
            return Reason.SOLD_OUT
        quantity = a.request.quantity
        try:
            self.update(
                f"H#{a.event_id}",
                a.request.buyer_id,
                UpdateExpression="ADD held :q, pids :ps",
                ConditionExpression="(attribute_not_exists(held) OR held <= :most)"
                " AND NOT contains(pids, :p)",
                ExpressionAttributeValues={
                    ":q": n(quantity),
                    ":most": n(a.per_buyer_limit - quantity),
                    ":ps": {"SS": [a.purchase_id]},
                    ":p": s(a.purchase_id),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            counted = exc.response.get("Item", {}).get("pids", {}).get("SS", [])
            return None if a.purchase_id in counted else Reason.LIMIT_EXCEEDED
        return None

    def _take_positions(
        self, event_id: str, state: Item, queued: int, admitted: int, group: str
    ) -> tuple[int, int]:
        """Reserve `queued` positions and `admitted` log places; return the last before each.

        One transaction moves the counters from the values read (a compare-and-set) and
        records the group's places under `G#<event>`, `<group>`: a transaction sent again
        (botocore's retry, same token) is applied once, and if a retry finds the counters
        moved, the group's record says whether they moved for it.
        """
        for attempt in range(CONFLICT_RETRIES):
            position, seq = num(state, "next_position"), num(state, "next_seq")
            actions = [
                self._counters(event_id, position, seq, queued, admitted),
                self._group_record(event_id, group, position, seq),
            ]
            if transact(self.client, actions) is None:
                return position, seq
            done = self.get(f"G#{event_id}", group)
            if done is not None:  # an earlier attempt of ours committed
                return num(done, "position"), num(done, "seq")
            state = self.get("LINE", event_id) or {}
            backoff(attempt)
        raise Unavailable(f"dynamodb: positions of {event_id} lost {CONFLICT_RETRIES} races")

    def _counters(
        self, event_id: str, position: int, seq: int, queued: int, admitted: int
    ) -> dict[str, Any]:
        condition = "next_seq = :seq" if seq else "attribute_not_exists(next_seq)"
        values = {":p": n(position + queued), ":s": n(seq + admitted), ":q": n(queued)}
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": s("LINE"), "sk": s(event_id)},
                "UpdateExpression": "SET next_position = :p, next_seq = :s"
                " ADD #depth :q, pending :q",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#depth": "depth"},
                "ExpressionAttributeValues": values | ({":seq": n(seq)} if seq else {}),
            }
        }

    def _group_record(self, event_id: str, group: str, position: int, seq: int) -> dict[str, Any]:
        expires = int(time.time() + KEY_TTL.total_seconds())
        item = {"pk": s(f"G#{event_id}"), "sk": s(group), "position": n(position)}
        item |= {"seq": n(seq), "expires_at": n(expires)}
        return {"Put": {"TableName": self.table, "Item": item}}


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
