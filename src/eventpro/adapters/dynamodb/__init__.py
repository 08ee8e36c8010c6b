"""The AWS tier: the inventory store and the line in DynamoDB (see docs/aws.md)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from eventpro.adapters.dynamodb import schema
from eventpro.adapters.dynamodb.ceiling import bare_calls
from eventpro.adapters.dynamodb.client import Target
from eventpro.adapters.dynamodb.queue import DynamoQueue
from eventpro.adapters.dynamodb.store import DynamoInventoryStore


def store_from_url(url: str) -> DynamoInventoryStore:
    """`dynamodb://PREFIX?region=eu-west-1&endpoint=http://…` (table `PREFIX-inventory`)."""
    return DynamoInventoryStore(Target.from_url(url))


def queue_from_url(url: str) -> DynamoQueue:
    """`dynamodb://PREFIX?region=…&endpoint=…` (table `PREFIX-line`)."""
    return DynamoQueue(Target.from_url(url))


def provision(url: str) -> list[str]:
    """Create both tables of `url`'s prefix (and the line's TTL) unless they exist."""
    return schema.provision(Target.from_url(url))


def scoped_url(url: str, scope: str) -> str:
    """The same account and region under a table prefix of its own, tables created."""
    scoped = urlunsplit(urlsplit(url)._replace(netloc=scope, path=""))
    schema.provision(Target.from_url(scoped))
    return scoped


def drop_scope(url: str) -> None:
    schema.drop(Target.from_url(url))


__all__ = [
    "DynamoInventoryStore",
    "DynamoQueue",
    "Target",
    "bare_calls",
    "drop_scope",
    "provision",
    "queue_from_url",
    "scoped_url",
    "store_from_url",
]
