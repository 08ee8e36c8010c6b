"""The SQLite store's ceiling: a bare loop of the same batched writes, nothing else.

`eventpro bench` runs it on a file beside the bench's and reports the workers' decision
rate as a share of it: per batch, one `BEGIN IMMEDIATE`, one conditional `UPDATE` of the
section by the batch's total (`… WHERE remaining >= :n`), one `executemany` INSERT of the
orders, `COMMIT`, at the same `synchronous` level, so its fsyncs cost what the workers'
cost. Everything the workers do beyond these writes (leases, completions, the rules) is
what the ratio measures.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from eventpro.adapters.sqlite.database import path_from_url

WINDOW = 20  # batches between two marks: as long as a worker's streak
ORDER = "INSERT INTO orders VALUES (?, 'evt_bench', ?, ?, 'Floor', '[]', 1, 100, '2030-01-01')"


def bare_batched_writes(url: str, requests: int, batch_size: int) -> list[tuple[float, int]]:
    """`(time, requests so far)` marks of selling `requests` units in batches."""
    path, synchronous = path_from_url(url)
    scratch = Path(path).with_suffix(".ceiling.db")
    conn = sqlite3.connect(scratch, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")  # checked by path_from_url
        conn.execute("CREATE TABLE stock (id INTEGER PRIMARY KEY, remaining INTEGER)")
        conn.execute(
            "CREATE TABLE orders (id TEXT PRIMARY KEY, event_id TEXT, buyer_id TEXT,"
            " purchase_id TEXT UNIQUE, section TEXT, seats TEXT, quantity INTEGER,"
            " amount_cents INTEGER, created_at TEXT)"
        )
        conn.execute("INSERT INTO stock VALUES (1, ?)", (requests,))
        return _sell(conn, requests, batch_size)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)


def _sell(conn: sqlite3.Connection, requests: int, batch_size: int) -> list[tuple[float, int]]:
    marks = [(time.perf_counter(), 0)]
    for batch, done in enumerate(range(0, requests, batch_size), start=1):
        n = min(batch_size, requests - done)
        conn.execute("BEGIN IMMEDIATE")
        updated = conn.execute(
            "UPDATE stock SET remaining = remaining - ? WHERE id = 1 AND remaining >= ?", (n, n)
        ).rowcount
        assert updated == 1
        conn.executemany(ORDER, [(f"o{i}", f"b{i}", f"p{i}") for i in range(done, done + n)])
        conn.execute("COMMIT")
        if batch % WINDOW == 0 or done + n == requests:
            marks.append((time.perf_counter(), done + n))
    return marks
