"""Capability `local`: the buyers' polls on SQLite are read on the event loop, which is
safe only because a read never waits for a writer (WAL mode). Shown with a real file and
a write transaction held open by another thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventpro.adapters.sqlite.queue import SqliteQueue
from eventpro.bootstrap import open_queue, open_store
from eventpro.domain.model import PurchaseStatus
from eventpro.services.purchases import view_purchases
from tests.contract.helpers import admission, new_event
from tests.support import write_held_open


def test_a_read_returns_the_committed_state_while_a_write_is_held_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    store, queue = open_store(url), open_queue(url)
    try:
        assert isinstance(queue, SqliteQueue)
        assert "local" in store.capabilities and "local" in queue.capabilities
        event = new_event(store)
        (admitted,) = queue.admit([admission(event, "b1")])
        purchase_id = admitted.purchase.id

        def reject(conn: sqlite3.Connection) -> object:  # changed under the write lock
            return conn.execute(
                "UPDATE purchases SET status = 'rejected' WHERE id = ?", (purchase_id,)
            )

        with write_held_open(queue.db, reject) as writer:
            views = view_purchases(store, queue, [purchase_id])
            assert writer.is_alive()  # read while the write was still open, not after it
        assert views[purchase_id].purchase.status is PurchaseStatus.QUEUED
        assert views[purchase_id].ahead == 0
        committed = view_purchases(store, queue, [purchase_id])[purchase_id]
        assert committed.purchase.status is PurchaseStatus.REJECTED  # the write did land
    finally:
        queue.close()
        store.close()


def test_the_memory_backends_are_read_off_the_loop() -> None:
    # their reads take a lock that a writer holds
    assert "local" not in open_store("memory://").capabilities
    assert "local" not in open_queue("memory://").capabilities
