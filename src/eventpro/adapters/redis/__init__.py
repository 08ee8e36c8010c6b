"""The self-hosted tier's admission and line: Redis, one Lua script per atomic step."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis

from eventpro.adapters.dialects import checked_name, with_query
from eventpro.adapters.redis.queue import RedisQueue, mapped_errors


def queue_from_url(url: str) -> RedisQueue:
    """`redis://host:6379/0?prefix=eventpro` (keys are `<prefix>:…`)."""
    return RedisQueue(url)


def scoped_url(url: str, scope: str) -> str:
    """The same server, under a key prefix of its own."""
    return with_query(url, "prefix", checked_name(scope, "key prefix"))


def drop_scope(url: str) -> None:
    parts = urlsplit(url)
    prefix = parse_qs(parts.query)["prefix"][0]
    with mapped_errors(), redis.Redis.from_url(urlunsplit(parts._replace(query=""))) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


__all__ = ["RedisQueue", "drop_scope", "queue_from_url", "scoped_url"]
