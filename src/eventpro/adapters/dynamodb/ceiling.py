"""The service's own rate for a mix of calls: a bare loop of DynamoDB calls, no EventPro.

`eventpro bench --backend aws` counts the calls its admission and its decisions make, by
operation and items per call, then plays the same mix here against the same endpoint and
table, from a few threads, and compares rates. Each call writes or reads small fresh
items of its own (conditional where EventPro's are), so nothing here can fail a condition.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import botocore.exceptions

from eventpro.adapters.dynamodb.client import Item, Target, error_code, mapped_errors, n, s
from eventpro.adapters.dynamodb.schema import STORE

PAYLOAD = "x" * 120  # about the size of a line entry or a decision
RESENT = frozenset({"TransactionCanceledException", "ConditionalCheckFailedException"})
QUERY_LIMIT = 100  # items a bare Query asks for (a lease asks for up to a batch)


class _Calls:
    """One kind of call each, on fresh keys under a partition of this run's own."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.pk = f"BARE#{uuid.uuid4().hex[:8]}"
        self.serial = itertools.count()
        self.lock = threading.Lock()
        self.written: list[Item] = []  # keys that transactions put and have not removed

    def key(self) -> Item:
        with self.lock:
            return {"pk": s(self.pk), "sk": s(f"{next(self.serial):012d}")}

    def item(self) -> Item:
        return {**self.key(), "data": s(PAYLOAD)}

    def run(self, client: Any, operation: str, items: int) -> None:
        call = getattr(self, operation, None)
        if call is not None:
            call(client, max(1, items))

    def UpdateItem(self, client: Any, _: int) -> None:
        client.update_item(
            TableName=self.table,
            Key=self.key(),
            UpdateExpression="ADD held :q",
            ConditionExpression="attribute_not_exists(held) OR held <= :limit",
            ExpressionAttributeValues={":q": n(1), ":limit": n(3)},
        )

    def PutItem(self, client: Any, _: int) -> None:
        client.put_item(
            TableName=self.table, Item=self.item(), ConditionExpression="attribute_not_exists(pk)"
        )

    def GetItem(self, client: Any, _: int) -> None:
        client.get_item(TableName=self.table, Key=self.key(), ConsistentRead=True)

    def DeleteItem(self, client: Any, _: int) -> None:
        client.delete_item(TableName=self.table, Key=self.key())

    def Query(self, client: Any, _: int) -> None:
        client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(self.pk)},
            Limit=QUERY_LIMIT,
            ConsistentRead=True,
        )

    def BatchWriteItem(self, client: Any, items: int) -> None:
        puts = [{"PutRequest": {"Item": self.item()}} for _ in range(min(items, 25))]
        client.batch_write_item(RequestItems={self.table: puts})

    def BatchGetItem(self, client: Any, items: int) -> None:
        keys = [self.key() for _ in range(min(items, 100))]
        client.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})

    def TransactWriteItems(self, client: Any, items: int) -> None:
        # every other transaction removes what the one before added, conditionally, as a
        # completion removes the line entries a decision paid for: the table stays its size
        items = min(items, 100)
        with self.lock:
            taken = self.written[:items] if len(self.written) >= items else []
            del self.written[: len(taken)]
        if taken:
            condition, verb = "attribute_exists(pk)", "Delete"
            actions: list[dict[str, Any]] = [{"Key": key} for key in taken]
        else:
            condition, verb = "attribute_not_exists(pk)", "Put"
            actions = [{"Item": self.item()} for _ in range(items)]
        for action in actions:
            action |= {"TableName": self.table, "ConditionExpression": condition}
        client.transact_write_items(TransactItems=[{verb: action} for action in actions])
        if not taken:
            with self.lock:
                self.written += [{"pk": a["Item"]["pk"], "sk": a["Item"]["sk"]} for a in actions]


def _resent_or_done(bare: _Calls, client: Any, operation: str, items: int) -> None:
    """Make one call. botocore resends a call whose answer timed out (the emulator serves
    one call at a time, so a big transaction can keep the others waiting past the read
    timeout); the resend of a call that was applied fails its own conditions. That call
    was made, as EventPro's resent calls are: it counts as done."""
    try:
        bare.run(client, operation, items)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in RESENT:
            raise


def bare_calls(url: str, calls: Sequence[tuple[str, int]], threads: int = 4) -> float:
    """Make `calls` ((operation, items) pairs, in order) from `threads` threads against
    `url`'s endpoint and inventory table; return the seconds they took. Operations this
    loop has no bare form of (table management) are left out."""
    target = Target.from_url(url)
    bare = _Calls(target.table(STORE))
    clients = [target.client() for _ in range(threads)]
    shares = [list(calls[i::threads]) for i in range(threads)]
    errors: list[BaseException] = []

    def work(client: Any, share: list[tuple[str, int]]) -> Callable[[], None]:
        def run() -> None:
            try:
                with mapped_errors():
                    for operation, items in share:
                        _resent_or_done(bare, client, operation, items)
            except BaseException as exc:  # reported by the caller's thread
                errors.append(exc)

        return run

    workers = [threading.Thread(target=work(c, sh)) for c, sh in zip(clients, shares, strict=True)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed
