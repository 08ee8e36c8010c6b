"""A tiny time-bounded cache, for values that many readers ask for at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A tiny time-bounded cache: values are refreshed at most every `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._items: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def get(self, key: K, load: Callable[[K], V]) -> V:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        value = load(key)
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[key] = (now, value)
        return value

    async def aget(self, key: K, load: Callable[[K], V]) -> V:
        """`get` for an event loop: `load` runs in a thread, one at a time per key, and a
        stale value is served while it runs (the loop never waits for a backend here,
        except for a key it has never seen)."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(asyncio.to_thread(load, key))
            pending.add_done_callback(lambda done: self._loaded(key, done))
        if hit is not None:
            return hit[1]
        return await asyncio.shield(pending)

    def _loaded(self, key: K, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is not done:
            return  # forgotten while it loaded: what it read may be from before
        del self._loading[key]
        if not done.cancelled() and done.exception() is None:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (time.monotonic(), done.result())

    def forget(self, key: K) -> None:
        self._items.pop(key, None)
        self._loading.pop(key, None)  # a load under way may hold the value from before
