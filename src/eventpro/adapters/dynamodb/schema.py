"""The tables the AWS tier needs, and `provision`, which creates them idempotently.

- `<prefix>-inventory` (the store): events, section counters, seats, decisions; the sparse
  index `orders` lists an event's confirmed purchases by position (allocation order).
- `<prefix>-line` (the queue): per-event line state, line entries by position, purchase
  records, per-buyer counts, idempotency keys (expiring by TTL on `expires_at`), dead
  letters; the index `log` lists an event's purchases in arrival order.

Both are on-demand (pay per request): a flash sale is a spike, not a steady load.
`deploy/aws/eventpro.yaml` declares the same tables for CloudFormation.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions

from eventpro.adapters.dynamodb.client import Target, error_code, mapped_errors

STORE = "inventory"
LINE = "line"
TTL_ATTRIBUTE = "expires_at"
ORDERS_INDEX = "orders"  # opk = event id (confirmed only), opos = position
LOG_INDEX = "log"  # lpk = event id, lseq = arrival sequence
TABLE_WAIT_SECONDS = 120

_INDEXES = {STORE: (ORDERS_INDEX, "opk", "opos"), LINE: (LOG_INDEX, "lpk", "lseq")}


def definition(name: str, role: str) -> dict[str, Any]:
    """The CreateTable request of one role's table."""
    index, hash_key, range_key = _INDEXES[role]
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": hash_key, "AttributeType": "S"},
            {"AttributeName": range_key, "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def provision(target: Target, roles: tuple[str, ...] = (STORE, LINE)) -> list[str]:
    """Create each role's table (and the line's TTL) unless it exists; safe to run twice.

    Returns one line per table saying what was done.
    """
    client = target.client()
    done = []
    for role in roles:
        name = target.table(role)
        created = _create(client, definition(name, role))
        _wait_active(client, name)
        if role == LINE:
            _enable_ttl(client, name)
        done.append(f"table {name}: {'created' if created else 'exists'}")
    return done


def _create(client: Any, request: dict[str, Any]) -> bool:
    try:
        client.create_table(**request)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceInUseException":
            return False  # it exists: provisioning twice is fine
        with mapped_errors():
            raise
    return True


def _wait_active(client: Any, name: str) -> None:
    deadline = time.monotonic() + TABLE_WAIT_SECONDS
    while True:
        with mapped_errors():
            status = client.describe_table(TableName=name)["Table"]["TableStatus"]
        if status == "ACTIVE" or time.monotonic() > deadline:
            return
        time.sleep(1)


def _enable_ttl(client: Any, name: str) -> None:
    with mapped_errors():
        current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )


def drop(target: Target, roles: tuple[str, ...] = (STORE, LINE)) -> None:
    """Delete the tables (tests clean up with it); missing tables are fine."""
    client = target.client()
    for role in roles:
        try:
            client.delete_table(TableName=target.table(role))
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
