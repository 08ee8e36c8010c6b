"""A journal of the write statements an adapter runs, for the benchmark's ceilings.

While `eventpro bench` lets the workers decide a line, a store's database may note every
write transaction (each statement and its parameters, in commit order); the ceiling then
replays exactly those, bare, on a copy of the data as it was before. What the workers
cost beyond the replay is the Python around the SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Transaction:
    """The statements of one write transaction, as executed."""

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.statements: list[tuple[str, Any, bool]] = []  # (sql, parameters, many)


class Journal:
    """The write transactions noted so far, and how many requests were decided at each
    mark, so that a replay can report the same progress."""

    def __init__(self) -> None:
        self.transactions: list[Transaction] = []
        self._marks: list[tuple[int, int]] = []  # (transactions so far, requests so far)

    def note(self, durable: bool = True) -> Transaction:
        """A new transaction, appended (call it once the transaction holds its lock)."""
        transaction = Transaction(durable)
        self.transactions.append(transaction)
        return transaction

    def mark(self, requests: int) -> None:
        """`requests` have been decided so far."""
        self._marks.append((len(self.transactions), requests))

    def replay(self, run: Callable[[Transaction], None]) -> list[tuple[float, int]]:
        """`run` each marked transaction in order; `(time, requests so far)` at each mark."""
        marks = [(time.perf_counter(), 0)]
        done = 0
        for at, requests in self._marks:
            for transaction in self.transactions[done:at]:
                run(transaction)
            done = at
            marks.append((time.perf_counter(), requests))
        return marks


class Recording:
    """A DB-API connection that notes each statement into a `Transaction`, then runs it."""

    def __init__(self, conn: Any, transaction: Transaction) -> None:
        self._conn, self._transaction = conn, transaction

    def execute(self, sql: Any, parameters: Any = ()) -> Any:
        self._transaction.statements.append((sql, parameters, False))
        return self._conn.execute(sql, parameters)

    def executemany(self, sql: Any, parameters: Any) -> Any:
        parameters = list(parameters)
        self._transaction.statements.append((sql, parameters, True))
        return self._conn.executemany(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
