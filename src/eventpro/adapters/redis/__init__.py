"""The self-hosted tier's admission and line: Redis, one Lua script per atomic step."""

from __future__ import annotations

from eventpro.adapters.redis.queue import RedisQueue


def queue_from_url(url: str) -> RedisQueue:
    """`redis://host:6379/0?prefix=eventpro` (keys are `<prefix>:…`)."""
    return RedisQueue(url)


__all__ = ["RedisQueue", "queue_from_url"]
