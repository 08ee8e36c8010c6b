"""The DynamoDB connection: URL parsing, the boto3 client, error mapping, quotas, values.

Credentials come only from boto3's standard chain (environment, shared files, instance or
task role): the URL names a table prefix, a region and optionally an endpoint, nothing
secret, and no error message here ever includes a credential.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from eventpro.ports import Conflict, Misconfigured, StoreError, Unavailable

# DynamoDB quotas (Developer Guide, "Service, account, and table quotas in Amazon DynamoDB").
MAX_TRANSACT_ITEMS = 100  # TransactWriteItems: actions per transaction
MAX_BATCH_GET_KEYS = 100  # BatchGetItem: keys per call
MAX_BATCH_WRITE_ITEMS = 25  # BatchWriteItem: put/delete requests per call
MAX_ITEM_BYTES = 400 * 1024  # one item, names and values included
# Our own cap under MAX_ITEM_BYTES for the compressed event definition (room for the rest).
MAX_DEFINITION_BYTES = 350 * 1024
# botocore's "standard" retry mode: exponential back-off with jitter on throttling
# (ProvisionedThroughputExceeded, ThrottlingException, RequestLimitExceeded) and on
# transient network errors; the attempts include the first call.
RETRIES = {"mode": "standard", "max_attempts": 8}
TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10}
# A transaction that loses a race (TransactionConflict) is tried again this often.
CONFLICT_RETRIES = 20

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
MISCONFIGURED = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ValidationException",
    }
)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Translate botocore errors into the port's `StoreError` family.

    Throttling and connection errors (after botocore's own retries) are `Unavailable`,
    a lost conditional write is `Conflict`, a missing table or refused access is
    `Misconfigured`. Messages carry the operation and the error code only.
    """
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        operation = getattr(exc, "operation_name", "call")
        if code in THROTTLED:
            raise Unavailable(f"dynamodb {operation}: {code}") from exc
        if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            raise Conflict(f"dynamodb {operation}: {code}") from exc
        if code == "ResourceNotFoundException":
            hint = "a table is missing: run `eventpro aws provision`"
            raise Misconfigured(f"dynamodb {operation}: {code} ({hint})") from exc
        if code in MISCONFIGURED:
            raise Misconfigured(f"dynamodb {operation}: {code}: {_message(exc)}") from exc
        raise StoreError(f"dynamodb {operation}: {code}") from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectTimeoutError,
    ) as exc:
        raise Unavailable(f"dynamodb: {type(exc).__name__}") from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise Misconfigured("dynamodb: no AWS credentials in the standard chain") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise StoreError(f"dynamodb: {type(exc).__name__}") from exc


def _message(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))[:200]


@dataclass(frozen=True, slots=True)
class Target:
    """What a `dynamodb://PREFIX?region=…&endpoint=…` URL names."""

    prefix: str
    region: str | None
    endpoint: str | None

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        prefix = parts.netloc or parts.path.strip("/")
        if not prefix or not all(c.isalnum() or c in "-_." for c in prefix):
            raise Misconfigured(f"{parts.scheme}:// needs a table prefix of [A-Za-z0-9_.-]")
        return cls(prefix, query.get("region"), query.get("endpoint"))

    def table(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def client(self, service: str = "dynamodb") -> Any:
        """A boto3 client; `Any` at this boundary, since the project carries no boto3 stubs."""
        config = botocore.config.Config(retries=RETRIES, max_pool_connections=32, **TIMEOUTS)
        with mapped_errors():
            return boto3.session.Session().client(
                service, region_name=self.region, endpoint_url=self.endpoint, config=config
            )


def s(value: str) -> AttributeValue:
    return {"S": value}


def n(value: int | float) -> AttributeValue:
    return {"N": str(value)}


def num(item: Mapping[str, AttributeValue], name: str, default: int = 0) -> int:
    found = item.get(name)
    return int(found["N"]) if found else default


def text(item: Mapping[str, AttributeValue], name: str, default: str = "") -> str:
    found = item.get(name)
    return str(found["S"]) if found else default


def cancellation_codes(exc: botocore.exceptions.ClientError) -> list[str]:
    """The reason code of each action of a cancelled transaction ("None" where it passed)."""
    reasons = exc.response.get("CancellationReasons", [])
    return [str(r.get("Code", "None")) for r in reasons]


def backoff(attempt: int) -> None:
    """Sleep a little longer after each lost race: the winners finish first."""
    time.sleep(min(0.2, 0.005 * 2**attempt))


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ping(client: Any, table: str, pk: str) -> None:
    """One strongly consistent read of a key that need not exist: the table answers.

    A data-plane read rather than DescribeTable, whose control-plane quota is far lower
    and which the workers' policy need not grant.
    """
    with mapped_errors():
        client.get_item(TableName=table, Key={"pk": s(pk), "sk": s("ping")}, ConsistentRead=True)


def query_all(client: Any, table: str, **request: Any) -> list[Item]:
    """Every item a Query matches, page after page."""
    items: list[Item] = []
    while True:
        answer = client.query(TableName=table, **request)
        items += answer["Items"]
        if "LastEvaluatedKey" not in answer:
            return items
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def batch_get(client: Any, table: str, keys: list[Item]) -> list[Item]:
    """The items of these keys that exist (strongly consistent), in any order."""
    items: list[Item] = []
    for group in chunks(keys, MAX_BATCH_GET_KEYS):
        pending: dict[str, Any] = {table: {"Keys": group, "ConsistentRead": True}}
        while pending:
            answer = client.batch_get_item(RequestItems=pending)
            items += answer["Responses"].get(table, [])
            pending = answer.get("UnprocessedKeys") or {}
    return items


def batch_write(client: Any, table: str, requests: list[dict[str, Any]]) -> None:
    """Put or delete requests, 25 per call, unprocessed ones sent again (not atomic)."""
    for group in chunks(requests, MAX_BATCH_WRITE_ITEMS):
        pending: dict[str, Any] = {table: group}
        while pending:
            answer = client.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}


def transact(client: Any, actions: list[dict[str, Any]]) -> list[str] | None:
    """Run one transaction; None if it committed, else each action's cancellation code."""
    try:
        client.transact_write_items(TransactItems=actions)
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code == "TransactionCanceledException":
            return cancellation_codes(exc) or ["Unknown"]
        if code in ("TransactionConflictException", "TransactionInProgressException"):
            return ["TransactionConflict"]
        raise
    return None


def transact_each(client: Any, group: list[Any], build: Any) -> list[Any]:
    """Commit `build(group)`, whose first `len(group)` actions are each member's guard.

    A member whose guard fails its condition (already done elsewhere) is left out and the
    transaction is built again for the rest; lost races are tried again after a pause.
    Returns the members whose actions committed.
    """
    for attempt in range(CONFLICT_RETRIES):
        if not group:
            return []
        codes = transact(client, build(group))
        if codes is None:
            return group
        failed = {i for i, c in enumerate(codes[: len(group)]) if c == "ConditionalCheckFailed"}
        group = [member for i, member in enumerate(group) if i not in failed]
        if not failed:
            backoff(attempt)
    raise Unavailable(f"dynamodb: a transaction lost {CONFLICT_RETRIES} races in a row")
