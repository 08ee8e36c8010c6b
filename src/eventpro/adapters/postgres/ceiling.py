"""The PostgreSQL store's ceiling: a bare loop of batched conditional writes, nothing else.

`eventpro bench` runs it on the same server as the workers and reports their decision
rate as a share of it. One transaction per batch, one `UPDATE … WHERE remaining >= 1` per
request (pipelined by `executemany`), on an ordinary (logged) table in a scratch schema,
so its commits cost what the workers' commits cost.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from eventpro.adapters.dialects import postgres_target

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
