"""The embedded tier: inventory store and purchase queue in one SQLite file (WAL mode)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from eventpro.adapters.dialects import checked_name
from eventpro.adapters.sqlite.ceiling import Replay, bare_batched_writes
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


def scoped_url(url: str, scope: str) -> str:
    """A file of its own, `scope.db`, beside the URL's file."""
    path, _ = path_from_url(url)
    parts = urlsplit(url)
    scoped = Path(path).with_name(f"{checked_name(scope, 'file')}.db")
    return urlunsplit(parts._replace(path=f"/{scoped}"))


def drop_scope(url: str) -> None:
    path, _ = path_from_url(url)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def statement_replay(url: str, store: object, queue: object) -> Replay:
    """The workers' own statements on `url`, journaled from now on, to replay bare."""
    return Replay(url, store, queue)


__all__ = [
    "SqliteDatabase",
    "SqliteInventoryStore",
    "SqliteQueue",
    "bare_batched_writes",
    "drop_scope",
    "queue_from_url",
    "scoped_url",
    "statement_replay",
    "store_from_url",
]
