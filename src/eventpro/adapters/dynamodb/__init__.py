"""The AWS tier: the inventory store and the line in DynamoDB (see docs/aws.md)."""

from __future__ import annotations

from eventpro.adapters.dynamodb.client import Target
from eventpro.adapters.dynamodb.queue import DynamoQueue
from eventpro.adapters.dynamodb.store import DynamoInventoryStore


def store_from_url(url: str) -> DynamoInventoryStore:
    """`dynamodb://PREFIX?region=eu-west-1&endpoint=http://…` (table `PREFIX-inventory`)."""
    return DynamoInventoryStore(Target.from_url(url))


def queue_from_url(url: str) -> DynamoQueue:
    """`dynamodb://PREFIX?region=…&endpoint=…` (table `PREFIX-line`)."""
    return DynamoQueue(Target.from_url(url))


__all__ = ["DynamoInventoryStore", "DynamoQueue", "Target", "queue_from_url", "store_from_url"]
