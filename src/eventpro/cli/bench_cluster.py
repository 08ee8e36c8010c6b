"""What `eventpro bench --backend cluster` adds: its backends and the bare-UPDATE baseline."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import redis

from eventpro.adapters.postgres.database import split_url


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
        for done in range(0, requests, batch_size):
            n = min(batch_size, requests - done)
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "UPDATE bench_stock SET remaining = remaining - 1"
                    " WHERE id = 1 AND remaining >= 1",
                    [()] * n,
                )
        seconds = time.perf_counter() - started
    return {
        "decided": requests,
        "seconds": round(seconds, 3),
        "rate": round(requests / seconds, 1) if seconds else 0.0,
        "batch_size": batch_size,
    }
