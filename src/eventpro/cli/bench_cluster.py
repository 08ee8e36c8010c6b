"""What `eventpro bench --backend cluster` adds: its backends and the bare-UPDATE baseline."""

from __future__ import annotations

import itertools
import statistics
import time
import uuid
from typing import Any

import psycopg
import redis

from eventpro.adapters.postgres.database import split_url
from eventpro.services.decisions import WorkerPolicy


def cluster_urls(postgres_url: str, redis_url: str) -> tuple[str, str, str]:
    """A fresh schema and key prefix for one bench run: (store URL, queue URL, scope)."""
    scope = f"eventpro_bench_{uuid.uuid4().hex[:10]}"
    store = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={scope}"
    queue = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={scope}"
    return store, queue, scope


def clean_up(postgres_url: str, redis_url: str, scope: str) -> None:
    with psycopg.connect(split_url(postgres_url)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{scope}" CASCADE')
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{scope}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def bare_batched_updates(
    postgres_url: str, scope: str, requests: int, batch_size: int
) -> dict[str, Any]:
    """The floor of selling on this PostgreSQL: batches of conditional UPDATEs, nothing else.

    One transaction per batch, one `UPDATE … WHERE remaining >= 1` per request (pipelined
    by `executemany`), as many requests as the workers decided. The table is an ordinary
    (logged) one in the bench's schema, so its commits cost what the workers' commits cost.
    """
    conninfo = split_url(postgres_url)[0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{scope}"')  # scope: made by cluster_urls
        conn.execute(f'SET search_path TO "{scope}"')
        conn.execute("CREATE TABLE bench_stock (id int PRIMARY KEY, remaining int)")
        conn.execute("INSERT INTO bench_stock VALUES (1, %s)", (requests,))
        started = time.perf_counter()
        marks = [(started, 0)]  # every WINDOW batches, as the workers' streaks
        for batch, done in enumerate(range(0, requests, batch_size), start=1):
            n = min(batch_size, requests - done)
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "UPDATE bench_stock SET remaining = remaining - 1"
                    " WHERE id = 1 AND remaining >= 1",
                    [()] * n,
                )
            if batch % WINDOW == 0:
                marks.append((time.perf_counter(), done + n))
        seconds = time.perf_counter() - started
        marks.append((started + seconds, requests))
    return {
        "decided": requests,
        "seconds": round(seconds, 3),
        "rate": round(requests / seconds, 1) if seconds else 0.0,
        "median_window_rate": median_window_rate(marks),
        "batch_size": batch_size,
    }


WINDOW = WorkerPolicy().streak  # batches: a window as long as a worker's streak


def median_window_rate(marks: list[tuple[float, int]]) -> float:
    """The median rate over consecutive windows, from (time, count so far) marks."""
    rates = [
        (n2 - n1) / (t2 - t1)
        for (t1, n1), (t2, n2) in itertools.pairwise(marks)
        if t2 > t1 and n2 > n1
    ]
    return round(statistics.median(rates), 1) if rates else 0.0
