"""The in-memory adapters: the reference model of both ports (`memory://`).

The contract suite and the Hypothesis model test compare every other adapter with them.
Nothing survives the process; each URL opens a new, empty instance.
"""

from __future__ import annotations

from eventpro.adapters.memory.queue import MemoryQueue
from eventpro.adapters.memory.store import MemoryInventoryStore


def store_from_url(url: str) -> MemoryInventoryStore:
    return MemoryInventoryStore()


def queue_from_url(url: str) -> MemoryQueue:
    return MemoryQueue()


def scoped_url(url: str, scope: str) -> str:
    return url  # every memory:// instance is private already


def drop_scope(url: str) -> None:
    return None


__all__ = ["MemoryInventoryStore", "MemoryQueue", "queue_from_url", "store_from_url"]
