"""A tiny time-bounded cache, for values that many readers ask for at once."""

from __future__ import annotations

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

    def forget(self, key: K) -> None:
        self._items.pop(key, None)
