"""The embedded tier: inventory store and purchase queue in one SQLite file (WAL mode)."""

from __future__ import annotations

from eventpro.adapters.sqlite.database import SqliteDatabase, path_from_url
from eventpro.adapters.sqlite.queue import SqliteQueue
from eventpro.adapters.sqlite.store import SqliteInventoryStore


def _database(url: str) -> SqliteDatabase:
    path, synchronous = path_from_url(url)
    return SqliteDatabase(path, synchronous)


def store_from_url(url: str) -> SqliteInventoryStore:
    """`sqlite:///eventpro.db` (relative) or `sqlite:////var/lib/eventpro.db` (absolute)."""
    return SqliteInventoryStore(_database(url))


def queue_from_url(url: str) -> SqliteQueue:
    """The queue in the same file format; point it at the store's file to share one database."""
    return SqliteQueue(_database(url))


__all__ = [
    "SqliteDatabase",
    "SqliteInventoryStore",
    "SqliteQueue",
    "queue_from_url",
    "store_from_url",
]
