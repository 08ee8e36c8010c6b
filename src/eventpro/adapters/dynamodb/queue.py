"""`DynamoQueue`: admission, the line and its log in DynamoDB, exact with many API processes.

Items of `<prefix>-line` (pk, sk):

- `LINE`, `<event>`: the event's line state: `next_position`, `next_seq`, `depth`
  (admitted, undecided), `pending` (of those, not dead), `decided`, `dead_moves` (dead
  letters made and redriven), `sold_out` (a string set), `gc_…`/`ge_…`/`gs_…` (each
  admitting adapter's last call and where it ended),
  and the lease (`lease_id`, `leased_until` by the caller's clock, `held` positions,
  `leased_through`, `delivered_through`, `version`);
- `L#<event>`, `<position>`: an undecided request in line, with `att` (extra deliveries);
- `PUR#<purchase>`, `#`: the admission log's record (status, reason, order id), listed by
  event in arrival order through the index `log` (`lpk`, `lseq`);
- `H#<event>`, `<buyer>`: tickets the buyer holds in line or confirmed (`held`), and the
  purchases counted (`pids`);
- `K#<event>`, `<idempotency key>`: the purchase it named, expiring by TTL (`expires_at`);
- `DEAD`, `<event>#<position>`: a dead letter.

Each step is a conditional write or an atomic `ADD`, so several API processes and workers
share one line: positions come from one update per group that adds to the counters, a
buyer's count from a conditional `ADD`, an idempotency key from a conditional `Put`.
Admission is in `admit.py`; leases and completion in `lease.py`; dead letters in
`dead.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from eventpro.adapters.dynamodb import codec
from eventpro.adapters.dynamodb.admit import Admissions
from eventpro.adapters.dynamodb.client import (
    Item,
    Target,
    mapped_errors,
    n,
    num,
    ping,
    s,
)
from eventpro.adapters.dynamodb.lease import Leases
from eventpro.adapters.dynamodb.schema import LINE, LOG_INDEX
from eventpro.adapters.dynamodb.store import cursor_number
from eventpro.domain.model import Decision, Purchase, PurchaseStatus
from eventpro.ports import (
    Admission,
    Admitted,
    DeadLetter,
    Delivery,
    IdSource,
    Page,
    PurchaseQueue,
)


class DynamoQueue(PurchaseQueue):
    capabilities = frozenset({"durable", "shared"})

    def __init__(self, target: Target, ids: IdSource | None = None) -> None:
        self.target = target
        self.table = target.table(LINE)
        self.client: Any = target.client()
        self.leases = Leases(self.client, self.table, ids or IdSource())
        self.admissions = Admissions(self.client, self.table)
        self.ping()

    def _get(self, pk: str, sk: str) -> Item | None:
        return self.admissions.get(pk, sk)

    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        """Admit in order: each key claim, buyer count and position range is one atomic
        conditional write; a group is not one transaction (see docs/aws.md, known gaps)."""
        with mapped_errors():
            return self.admissions.admit(admissions)

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        """Take an event's lease with one write conditioned on the version read (by the
        caller's clock), so two workers never hold one event; retried requests' delivery
        counts move in the same transaction."""
        with mapped_errors():
            return self.leases.lease(max_items, visibility_timeout, now, after)

    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        """Per transaction of up to 33 requests: delete each entry (`attribute_exists`),
        record its decision, give a rejected buyer's tickets back, move the counters; an
        entry already gone was completed before and is left out, so nothing counts twice."""
        with mapped_errors():
            self.leases.complete(deliveries, decisions)

    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        """Give the request back (one update of the lease), or bury it: one transaction moves
        it from the line to the dead letters, if it is still in line."""
        with mapped_errors():
            return self.leases.fail(delivery, error, max_attempts, now)

    def mark_sold_out(self, event_id: str, sections: set[str]) -> None:
        """Add the sections to the event's sold-out set (an atomic `ADD`)."""
        if not sections:
            return
        with mapped_errors():
            self.admissions.update(
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

    def line_mark(self, event_id: str) -> Hashable:
        """Positions given, undecided, and dead letters made and redriven: a count that only
        grows, where `pending` would come back as it was after a redrive."""
        with mapped_errors():
            state = self._get("LINE", event_id) or {}
        return tuple(num(state, name) for name in ("next_position", "depth", "dead_moves"))

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
        """Move dead letters back to their positions, each in a transaction that deletes the
        dead letter (`attribute_exists`), so a request is redriven once."""
        with mapped_errors():
            return self.leases.redrive(event_id, purchase_ids)

    def ping(self) -> None:
        ping(self.client, self.table, "LINE")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: tidy the line states
            self.admissions.forget()
        self.client.close()
