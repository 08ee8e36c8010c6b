"""The self-hosted tier's system of record: PostgreSQL (psycopg 3, a bounded pool)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from eventpro.adapters.dialects import checked_name, postgres_target, with_query
from eventpro.adapters.postgres.ceiling import Replay, bare_batched_writes
from eventpro.adapters.postgres.database import PostgresDatabase, mapped_errors
from eventpro.adapters.postgres.store import PostgresInventoryStore


def store_from_url(url: str) -> PostgresInventoryStore:
    """`postgresql://user@host:5432/db?schema=eventpro` (the schema is created if missing)."""
    return PostgresInventoryStore(PostgresDatabase(url))


def scoped_url(url: str, scope: str) -> str:
    """The same server and database, in a schema of its own."""
    return with_query(url, "schema", checked_name(scope, "schema"))


def drop_scope(url: str) -> None:
    conninfo, schema = postgres_target(url)
    with mapped_errors(), psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def statement_replay(url: str, store: object, queue: object) -> Replay:
    """The store's own statements on `url`, journaled from now on, to replay bare."""
    return Replay(url, store)


def max_connections(url: str) -> int:
    """How many connections the server takes."""
    conninfo, _ = postgres_target(url)
    with mapped_errors(), psycopg.connect(conninfo) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return int(row[0]) if row else 0


__all__ = [
    "PostgresDatabase",
    "PostgresInventoryStore",
    "bare_batched_writes",
    "drop_scope",
    "max_connections",
    "scoped_url",
    "statement_replay",
    "store_from_url",
]
