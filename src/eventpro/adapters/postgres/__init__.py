"""The self-hosted tier's system of record: PostgreSQL (psycopg 3, a bounded pool)."""

from __future__ import annotations

from eventpro.adapters.postgres.database import PostgresDatabase
from eventpro.adapters.postgres.store import PostgresInventoryStore


def store_from_url(url: str) -> PostgresInventoryStore:
    """`postgresql://user@host:5432/db?schema=eventpro` (the schema is created if missing)."""
    return PostgresInventoryStore(PostgresDatabase(url))


__all__ = ["PostgresDatabase", "PostgresInventoryStore", "store_from_url"]
