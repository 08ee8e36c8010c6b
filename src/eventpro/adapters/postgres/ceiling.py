"""The PostgreSQL store's ceilings, which `eventpro bench` compares the workers with.

- `Replay`: the store's own statements, replayed bare. While the workers decide the
  line, every statement the store runs (one `eventpro_decide(…)` call a batch, with its
  arrays) is journaled; then exactly those run again, in order, each in autocommit as the
  store runs them, in a scratch schema holding a copy of the store's tables as they were
  before. The queue's side of a decision (Redis) is not in it: the replay is what
  PostgreSQL alone takes for the same work.
- `bare_batched_writes`: for scale, one transaction per batch, one
  `UPDATE … WHERE remaining >= 1` per request (pipelined by `executemany`), on an
  ordinary (logged) table in a scratch schema.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from eventpro.adapters.dialects import postgres_target, with_query
from eventpro.adapters.journal import Journal, Transaction
from eventpro.adapters.postgres.database import PostgresDatabase

PARENTS = ("events",)  # copied first: other tables refer to them
WINDOW = 20  # batches between two marks: as long as a worker's streak


def bare_batched_writes(url: str, requests: int, batch_size: int) -> list[tuple[float, int]]:
    """`(time, requests so far)` marks of selling `requests` units in batches."""
    conninfo, schema = postgres_target(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("CREATE TABLE bench_stock (id int PRIMARY KEY, remaining int)")
        try:
            conn.execute("INSERT INTO bench_stock VALUES (1, %s)", (requests,))
            return _sell(conn, requests, batch_size)
        finally:
            conn.execute("DROP TABLE bench_stock")


def _sell(
    conn: psycopg.Connection[tuple[object, ...]], requests: int, batch_size: int
) -> list[tuple[float, int]]:
    marks = [(time.perf_counter(), 0)]
    for batch, done in enumerate(range(0, requests, batch_size), start=1):
        n = min(batch_size, requests - done)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE bench_stock SET remaining = remaining - 1 WHERE id = 1 AND remaining >= 1",
                [()] * n,
            )
        if batch % WINDOW == 0 or done + n == requests:
            marks.append((time.perf_counter(), done + n))
    return marks


class Replay:
    """Journals the statements of `store` from now on; `run()` replays them bare on a copy
    of its tables as they are now."""

    def __init__(self, url: str, store: object) -> None:
        self._conninfo, schema = postgres_target(url)
        db = getattr(store, "db", None)
        assert isinstance(db, PostgresDatabase), "a PostgreSQL store"
        self._db, self._copy = db, f"{schema}_replay"
        self._journal = Journal()
        try:
            PostgresDatabase(with_query(url, "schema", self._copy), max_size=1).pool.close()
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                for table in _tables(conn, schema):
                    conn.execute(
                        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                            sql.Identifier(self._copy, table), sql.Identifier(schema, table)
                        )
                    )
        except BaseException:
            self.discard()
            raise
        db.journal = self._journal

    def mark(self, requests: int) -> None:
        """`requests` have been decided so far."""
        self._journal.mark(requests)

    def run(self) -> list[tuple[float, int]]:
        """`(time, requests so far)` marks of the journaled statements, replayed."""
        self._db.journal = None
        options = f"-c search_path={self._copy}"
        try:
            with psycopg.connect(self._conninfo, autocommit=True, options=options) as conn:

                def again(transaction: Transaction) -> None:
                    for statement, parameters, many in transaction.statements:
                        if many:
                            conn.cursor().executemany(statement, parameters)
                        else:
                            conn.execute(statement, parameters).fetchall()

                return self._journal.replay(again)
        finally:
            self.discard()

    def discard(self) -> None:
        """Stop journaling and drop the copy."""
        self._db.journal = None
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
            conn.execute(drop.format(sql.Identifier(self._copy)))


def _tables(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> list[str]:
    """The store's tables in `schema`, those others refer to first."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
        " AND table_type = 'BASE TABLE' AND table_name <> 'eventpro_migrations'",
        (schema,),
    ).fetchall()
    return sorted((str(row[0]) for row in rows), key=lambda t: (t not in PARENTS, t))
