"""What the Redis queue keeps in Redis: decided entries leave the stream, pending ones stay.

The conformance suite checks the queue's behaviour on every backend; this checks the
Redis data itself, since the backlog lives there: a drained line leaves its stream (and
its consumer group's pending list) empty, whatever the number of requests it carried.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from eventpro.adapters import open_queue, open_store
from eventpro.adapters.redis import RedisQueue
from tests.contract.helpers import NOW, admission, drain, new_event

REDIS_URL = os.environ.get("EVENTPRO_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="EVENTPRO_TEST_REDIS_URL is not set")


@pytest.fixture
def queue(tmp_path) -> Iterator[RedisQueue]:
    assert REDIS_URL
    prefix = f"streams_{uuid.uuid4().hex[:10]}"
    opened = open_queue(f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}")
    assert isinstance(opened, RedisQueue)
    try:
        yield opened
    finally:
        for key in opened.client.scan_iter(match=f"{prefix}:*", count=1000):
            opened.client.delete(key)
        opened.close()


def test_decided_entries_leave_the_stream_and_failed_ones_stay_pending(queue, tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    event = new_event(store, capacity=5000)
    stream = f"{queue.prefix}:stream:{event.id}"
    for start in range(0, 1200, 300):
        queue.admit([admission(event, f"b{n}") for n in range(start, start + 300)])
    assert queue.client.xlen(stream) == 1200
    (flaky,) = queue.lease(1, 30, NOW)
    assert not queue.fail(flaky, "flaky", 5, NOW)  # may be retried: stays pending
    assert drain(store, queue, batch=250) == 1200
    assert queue.client.xlen(stream) <= 1  # at most the last delivered entry is kept
    assert queue.client.xpending(stream, "workers")["pending"] == 0
    assert queue.get_purchase(flaky.purchase.id).status.value == "confirmed"
    store.close()


def test_a_pending_entry_survives_the_trim_of_later_decided_ones(queue, tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    event = new_event(store, capacity=50)
    queue.admit([admission(event, f"b{n}") for n in range(20)])
    stale = queue.lease(5, 5, NOW)  # a worker takes five and dies
    later = NOW.replace(year=NOW.year + 1)
    again = queue.lease(20, 5, later)  # the lease expired: the five come back first
    assert [d.purchase.id for d in again[:5]] == [d.purchase.id for d in stale]
    assert len(again) == 20 and [d.attempt for d in again[:6]] == [2, 2, 2, 2, 2, 1]
    decided = store.decide([d.purchase for d in again], later)
    queue.complete(again, decided.decisions)
    assert queue.depth(event.id) == 0
    assert queue.client.xlen(f"{queue.prefix}:stream:{event.id}") <= 1
    store.close()
