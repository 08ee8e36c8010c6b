"""The AWS tier's failure modes on the emulator: throttling, lost answers, two workers
holding one batch, a poison request; nothing sold twice and nothing lost in any of them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import botocore.awsrequest
import botocore.exceptions
import pytest
import urllib3

from eventpro.domain.model import PurchaseStatus
from eventpro.ports import Clock
from eventpro.services.decisions import WorkerPolicy, decide_streak
from tests.contract.helpers import (
    NOW,
    admission,
    all_orders,
    assert_inventory_consistent,
    new_event,
)

pytestmark = [pytest.mark.dynamodb]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def throttle_first(client: Any, operation: str, times: int) -> list[int]:
    """Answer the first `times` calls of `operation` with a throttling error (never sent)."""
    seen = [0]

    def before_send(request: Any, **_: Any) -> Any:
        seen[0] += 1
        if seen[0] > times:
            return None
        body = json.dumps({"__type": "ProvisionedThroughputExceededException", "message": "slow"})
        return botocore.awsrequest.AWSResponse(request.url, 400, {}, _Raw(body.encode()))

    client.meta.events.register(f"before-send.dynamodb.{operation}", before_send)
    return seen


def lose_first_answer(client: Any, operation: str, marker: bytes = b"") -> list[int]:
    """Send the first call of `operation` (whose body holds `marker`) for real, then drop
    its answer (a reset); count those calls."""
    seen = [0]

    def before_send(request: Any, **_: Any) -> Any:
        if marker not in request.body:
            return None
        seen[0] += 1
        if seen[0] > 1:
            return None
        urllib3.request("POST", request.url, body=request.body, headers=dict(request.headers))
        raise botocore.exceptions.ConnectionClosedError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.dynamodb.{operation}", before_send)
    return seen


def test_a_throttled_transaction_is_retried_and_takes_stock_once(
    dynamodb_store, dynamodb_queue
) -> None:
    event = new_event(dynamodb_store, capacity=5)
    purchase = dynamodb_queue.admit([admission(event, "a", 2)])[0].purchase
    calls = throttle_first(dynamodb_store.client, "TransactWriteItems", 2)
    decision = dynamodb_store.decide([purchase], NOW).decisions[0]
    assert calls[0] == 3  # two throttled answers, then the write: botocore's standard retries
    assert decision.status is PurchaseStatus.CONFIRMED
    assert dynamodb_store.get_inventory(event.id).remaining["Floor"] == 3
    assert len(all_orders(dynamodb_store, event.id)) == 1


def test_a_transaction_whose_answer_was_lost_is_not_applied_twice(
    dynamodb_store, dynamodb_queue
) -> None:
    event = new_event(dynamodb_store, capacity=5)
    purchase = dynamodb_queue.admit([admission(event, "a", 2)])[0].purchase
    calls = lose_first_answer(dynamodb_store.client, "TransactWriteItems")
    decision = dynamodb_store.decide([purchase], NOW).decisions[0]
    assert calls[0] >= 2  # committed, answer lost, sent again: its conditions fail
    assert decision.status is PurchaseStatus.CONFIRMED
    assert dynamodb_store.get_inventory(event.id).remaining["Floor"] == 3
    assert len(all_orders(dynamodb_store, event.id)) == 1
    assert_inventory_consistent(dynamodb_store, event)


def test_two_workers_holding_one_batch_sell_nothing_twice(dynamodb_store, dynamodb_queue) -> None:
    store, queue = dynamodb_store, dynamodb_queue
    event = new_event(store, capacity=3)
    queue.admit([admission(event, f"b{i}") for i in range(5)])
    slow = queue.lease(10, 5, NOW)  # this worker outlives its visibility timeout
    fast = queue.lease(10, 5, NOW + timedelta(seconds=6))  # so another takes the batch
    assert [d.purchase.id for d in fast] == [d.purchase.id for d in slow]
    assert [d.attempt for d in fast] == [2] * 5
    for deliveries in (fast, slow):  # both decide and complete, the stale one last
        queue.complete(deliveries, store.decide([d.purchase for d in deliveries], NOW).decisions)
    assert queue.depth(event.id) == 0 and queue.lease(10, 5, NOW + timedelta(seconds=6)) == []
    statuses = [queue.get_purchase(d.purchase.id).status for d in slow]
    assert statuses == [PurchaseStatus.CONFIRMED] * 3 + [PurchaseStatus.REJECTED] * 2
    assert len(all_orders(store, event.id)) == 3
    assert_inventory_consistent(store, event)


def test_a_duplicate_delivery_is_decided_once(dynamodb_store, dynamodb_queue) -> None:
    store, queue = dynamodb_store, dynamodb_queue
    event = new_event(store, capacity=2)
    queue.admit([admission(event, "a", 2), admission(event, "b", 1)])
    first = queue.lease(10, 5, NOW)
    decided = store.decide([d.purchase for d in first], NOW).decisions
    again = queue.lease(10, 5, NOW + timedelta(seconds=6))  # not completed: delivered again
    assert store.decide([d.purchase for d in again], NOW).decisions == decided
    queue.complete(again, decided)
    queue.complete(first, decided)
    assert store.get_inventory(event.id).remaining["Floor"] == 0
    assert queue.depth(event.id) == 0
    assert_inventory_consistent(store, event)


def test_a_poison_request_is_dead_lettered_without_blocking_and_redriven(
    dynamodb_store, dynamodb_queue
) -> None:
    store, queue = dynamodb_store, dynamodb_queue
    event = new_event(store, capacity=5)
    poison, *others = [
        a.purchase
        for a in queue.admit(
            [admission(event, "p", section="A"), admission(event, "a"), admission(event, "b")]
        )
    ]
    # damaged data: every seat of section A marked sold while its counter still says 4
    seats = [{"pk": {"S": f"SEAT#{event.id}#A"}, "sk": {"S": f"{i:06d}"}} for i in range(4)]
    _set_owner(store, seats, "damage")
    policy = WorkerPolicy(batch_size=10, visibility_timeout=30, max_attempts=2)
    for _ in range(3):
        decide_streak(store, queue, Clock(), policy)
    assert [queue.get_purchase(p.id).status for p in others] == [PurchaseStatus.CONFIRMED] * 2
    letters = queue.dead_letters(event.id, 10, None).items
    assert [(d.purchase.id, d.attempts) for d in letters] == [(poison.id, 2)]
    _set_owner(store, seats, None)  # repaired
    assert queue.redrive(event.id, None) == 1
    decide_streak(store, queue, Clock(), policy)
    assert queue.get_purchase(poison.id).status is PurchaseStatus.CONFIRMED
    assert queue.depth(event.id) == 0 and queue.dead_letters(event.id, 10, None).items == []
    assert_inventory_consistent(store, event)


def _set_owner(store: Any, keys: list[dict[str, Any]], owner: str | None) -> None:
    for key in keys:
        if owner is None:
            store.client.update_item(TableName=store.table, Key=key, UpdateExpression="REMOVE #o",
                                     ExpressionAttributeNames={"#o": "owner"})  # fmt: skip
        else:
            store.client.update_item(
                TableName=store.table,
                Key=key,
                UpdateExpression="SET #o = :o",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": owner}},
            )


def test_reserved_seats_with_a_limit_above_one_transaction_are_refused(dynamodb_store) -> None:
    from eventpro.domain.errors import InvalidEvent

    with pytest.raises(InvalidEvent, match="per_buyer_limit"):
        new_event(dynamodb_store, limit=99)
    assert new_event(dynamodb_store, limit=98).per_buyer_limit == 98


def test_an_admission_that_fails_before_its_positions_gives_back_counts_and_keys(
    dynamodb_store, dynamodb_queue
) -> None:
    from eventpro.ports import StoreError

    event = new_event(dynamodb_store, limit=2)

    def refuse_positions(request: Any, **_: Any) -> Any:
        if b"next_position" not in request.body:
            return None  # only the positions' transaction is refused
        body = json.dumps({"__type": "AccessDeniedException", "message": "no"}).encode()
        return botocore.awsrequest.AWSResponse(request.url, 400, {}, _Raw(body))

    events = dynamodb_queue.client.meta.events
    events.register("before-send.dynamodb.UpdateItem", refuse_positions)
    with pytest.raises(StoreError):
        dynamodb_queue.admit([admission(event, "a", 2, key="k", body="h")])
    events.unregister("before-send.dynamodb.UpdateItem", refuse_positions)
    retried = dynamodb_queue.admit([admission(event, "a", 2, key="k", body="h")])[0]
    assert retried.purchase.status is PurchaseStatus.QUEUED and not retried.replayed
    assert retried.purchase.position == 1


def test_an_event_counted_pending_with_nothing_in_line_starves_no_other(
    dynamodb_store, dynamodb_queue
) -> None:
    store, queue = dynamodb_store, dynamodb_queue
    broken = [new_event(store) for _ in range(4)]
    for event in broken:  # positions taken by an admission that died before writing them
        queue.client.update_item(
            TableName=queue.table,
            Key={"pk": {"S": "LINE"}, "sk": {"S": event.id}},
            UpdateExpression="ADD next_position :one, pending :one, #d :one",
            ExpressionAttributeNames={"#d": "depth"},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    healthy = new_event(store)
    queue.admit([admission(healthy, "a")])
    leased = []
    for _ in range(3):
        leased = leased or queue.lease(10, 30, NOW)
    assert [d.purchase.event_id for d in leased] == [healthy.id]


def test_admission_calls_whose_answers_were_lost_count_once(dynamodb_store, dynamodb_queue) -> None:
    store, queue = dynamodb_store, dynamodb_queue
    event = new_event(store, limit=4)
    held = lose_first_answer(queue.client, "UpdateItem", b"pids")  # the buyer's count
    positions = lose_first_answer(queue.client, "UpdateItem", b"next_position")
    first = queue.admit([admission(event, "a", 2)])[0].purchase
    assert held[0] >= 2 and positions[0] >= 2  # each applied, answer lost, sent again
    second = queue.admit([admission(event, "a", 2), admission(event, "b")])
    assert [first.position] + [r.purchase.position for r in second] == [1, 2, 3]
    assert queue.depth(event.id) == 3  # neither the count nor the positions moved twice
