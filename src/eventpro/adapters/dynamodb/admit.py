"""Admission to the DynamoDB line: idempotency keys, the rules, positions, records.

A group of admissions costs one conditional `Put` per idempotency key, one conditional
`ADD held` per request that may queue, and per event one `GetItem` (sold-out flags and
counters), one `UpdateItem` that adds to the counters and leaves where this group ended
under this adapter's own attribute names (so a resend is recognised), and
`BatchWriteItem`s of the records and line entries (25 a call). Several API processes
admit at once: no step can lose a race, and none counts twice when botocore resends it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.client import Item, batch_write, n, num, s
from eventpro.domain.model import Purchase, Reason
from eventpro.ports import Admission, Admitted, Unavailable

KEY_TTL = timedelta(days=1)  # how long an Idempotency-Key is remembered
# A key claimed by another process whose purchase is not recorded yet: wait this long.
KEY_WAIT_SECONDS = 2.0


class Admissions:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table
        self._me = uuid.uuid4().hex[:12]  # names this adapter's attributes on line states
        self._calls = 0
        self._positions_lock = threading.Lock()
        self._events: set[str] = set()  # events whose line state carries those attributes

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
                    outcome[i] = a.replayed(earlier)
                    continue
            fresh.append(i)
        self._record(admissions, fresh, outcome)
        for i, a in enumerate(admissions):
            if outcome[i] is None and a.idempotency_key is not None:
                first = outcome[seen[(a.event_id, a.idempotency_key)]]
                assert first is not None
                outcome[i] = a.replayed(first.purchase)
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
                purchase = admissions[i].purchase(reason, position if reason is None else None)
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
            self._events.add(event_id)
            reasons = []
            for a in chosen:
                reasons.append(self._reason(a, sold_out))
                if reasons[-1] is None:
                    counted.append(a)
            queued = sum(r is None for r in reasons)
            return (reasons, *self._take_positions(event_id, queued, len(chosen)))
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

    def _take_positions(self, event_id: str, queued: int, admitted: int) -> tuple[int, int]:
        """Reserve `queued` positions and `admitted` log places; return the last before each.

        One update adds to the counters (no race to lose) and leaves, in attributes of this
        adapter's own, the number of its call and where it ended. If botocore sends the
        update again after it was applied, the call number refuses it, and the attributes
        it left say which places it took.
        """
        with self._positions_lock:  # this adapter's calls, one at a time, in order
            self._calls += 1
            mine = {"#c": f"gc_{self._me}", "#e": f"ge_{self._me}", "#s": f"gs_{self._me}"}
            values = {":q": n(queued), ":a": n(admitted), ":zero": n(0), ":call": n(self._calls)}
            try:
                new = self.update(
                    "LINE",
                    event_id,
                    UpdateExpression="SET next_position = if_not_exists(next_position, :zero)"
                    " + :q, next_seq = if_not_exists(next_seq, :zero) + :a, #c = :call,"
                    " #e = if_not_exists(next_position, :zero) + :q,"
                    " #s = if_not_exists(next_seq, :zero) + :a ADD #depth :q, pending :q",
                    ConditionExpression="attribute_not_exists(#c) OR #c < :call",
                    ExpressionAttributeNames={**mine, "#depth": "depth"},
                    ExpressionAttributeValues=values,
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
            except self.client.exceptions.ConditionalCheckFailedException as exc:
                new = exc.response.get("Item", {})  # applied before: its answer was lost
                if num(new, mine["#c"]) != self._calls:
                    raise
            return num(new, mine["#e"]) - queued, num(new, mine["#s"]) - admitted

    def forget(self) -> None:
        """Remove this adapter's attributes from the line states it wrote (at close)."""
        names = {"#c": f"gc_{self._me}", "#e": f"ge_{self._me}", "#s": f"gs_{self._me}"}
        for event_id in sorted(self._events):
            self.update(
                "LINE",
                event_id,
                UpdateExpression="REMOVE #c, #e, #s",
                ExpressionAttributeNames=names,
            )
