"""The SQLite store's ceilings, which `eventpro bench` compares the workers with.

- `Replay`: the workers' own statements, replayed bare. While the workers decide the
  line, every write transaction of the store and the queue is journaled (statement and
  parameters, see `adapters/journal.py`); then exactly those transactions run again, in
  the same order, on a copy of the file taken before the workers started, through the
  same `SqliteDatabase` (same pragmas, same fsyncs, same background checkpoints), with
  nothing around them. The ratio of the two rates is what the Python around the SQL
  costs: reading rows into objects, the rules, building the next statements.
- `bare_batched_writes`: the least a sale can write, for scale: per batch one
  `BEGIN IMMEDIATE`, one conditional `UPDATE` of the section by the batch's total
  (`… WHERE remaining >= :n`), one `executemany` INSERT of the orders, `COMMIT`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from eventpro.adapters.journal import Journal, Transaction
from eventpro.adapters.sqlite.database import SqliteDatabase, path_from_url

Marks = list[tuple[float, int]]  # (time, requests so far)
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


class Replay:
    """Journals the write transactions of `parts` (a store and a queue of one file) from
    now on; `run()` replays them bare on a copy of the file as it was now."""

    def __init__(self, url: str, *parts: object) -> None:
        path, self._synchronous = path_from_url(url)
        self._copy = Path(path).with_suffix(".replay.db")
        source, copy = sqlite3.connect(path), sqlite3.connect(self._copy)
        with contextlib.closing(source), contextlib.closing(copy):
            source.backup(copy)
        self._journal = Journal()
        self._databases = [
            db for part in parts if isinstance(db := getattr(part, "db", None), SqliteDatabase)
        ]
        for db in self._databases:
            db.journal = self._journal

    def mark(self, requests: int) -> None:
        """`requests` have been decided so far."""
        self._journal.mark(requests)

    def run(self) -> Marks:
        """`(time, requests so far)` marks of the journaled transactions, replayed."""
        self._stop_journaling()
        db = SqliteDatabase(str(self._copy), self._synchronous)

        def again(transaction: Transaction) -> None:
            with db.write(transaction.durable) as conn:
                for sql, parameters, many in transaction.statements:
                    run = conn.executemany if many else conn.execute
                    run(sql, parameters).fetchall()

        try:
            return self._journal.replay(again)
        finally:
            db.close()
            self.discard()

    def discard(self) -> None:
        """Stop journaling and delete the copy."""
        self._stop_journaling()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._copy}{suffix}").unlink(missing_ok=True)

    def _stop_journaling(self) -> None:
        for db in self._databases:
            db.journal = None
