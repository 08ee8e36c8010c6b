"""The backends every adapter test runs on, built by URL on a fresh, private scope.

Stores: `memory` (the reference model), `sqlite` (a fresh file), `postgres` (a fresh
schema), `mysql` (a fresh database), `dynamodb` (fresh tables); queues: `memory`,
`sqlite`, `redis` (a fresh key prefix), `dynamodb`. The servers are those of
`EVENTPRO_TEST_POSTGRES_URL`, `EVENTPRO_TEST_REDIS_URL` and `EVENTPRO_TEST_MYSQL_URL`
(the Makefile points them at 127.0.0.1); DynamoDB is `EVENTPRO_TEST_DYNAMODB_URL` or,
when that is not set, the moto emulator of `tests/aws_support.py`, started on first use.
One that is not set or does not answer skips its backend, naming why; under `CI=true` it
fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from eventpro.bootstrap import drop_scope, open_queue, open_store, scoped_url
from eventpro.ports import InventoryStore, PurchaseQueue, Unavailable
from tests.aws_support import emulator_url

STORES = ["memory", "sqlite", "postgres", "mysql", "dynamodb"]
QUEUES = ["memory", "sqlite", "redis", "dynamodb"]
SERVERS = {
    "postgres": "EVENTPRO_TEST_POSTGRES_URL",
    "mysql": "EVENTPRO_TEST_MYSQL_URL",
    "redis": "EVENTPRO_TEST_REDIS_URL",
    "dynamodb": "EVENTPRO_TEST_DYNAMODB_URL",
}
IN_CI = os.environ.get("CI") == "true"
_unreachable: dict[str, str] = {}
URLS: dict[int, str] = {}  # id of an adapter a fixture opened -> its URL


def reopened(adapter: InventoryStore | PurchaseQueue) -> InventoryStore | PurchaseQueue:
    """A second adapter on the URL of one that `opened` made."""
    url = URLS[id(adapter)]
    return open_store(url) if isinstance(adapter, InventoryStore) else open_queue(url)


def unreachable(backend: str, reason: str) -> NoReturn:
    """A backend's server is missing: a failure under CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{backend}: {reason} (CI=true: a missing service is a failure)")
    pytest.skip(f"{backend}: {reason}")


def backend_url(backend: str, tmp_path: Path) -> str:
    """The URL of a fresh, empty instance of `backend` for one test."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    server = os.environ.get(SERVERS[backend])
    if not server and backend == "dynamodb":
        server = _emulated_dynamodb()
    if not server:
        unreachable(backend, f"{SERVERS[backend]} is not set")
    return scoped_url(server, f"eventpro_test_{uuid.uuid4().hex[:12]}")


def _emulated_dynamodb() -> str:
    try:
        return emulator_url()
    except (OSError, RuntimeError) as exc:
        unreachable("dynamodb", f"the AWS emulator did not start: {exc}")


def opened(backend: str, url: str, open_: type) -> Iterator[InventoryStore | PurchaseQueue]:
    """Open an adapter on `url`, yield it, then drop what the test wrote and close it."""
    if backend in _unreachable:
        unreachable(backend, _unreachable[backend])
    try:
        adapter = open_store(url) if open_ is InventoryStore else open_queue(url)
    except Unavailable as exc:
        _unreachable[backend] = f"not reachable: {exc}"
        unreachable(backend, _unreachable[backend])
    URLS[id(adapter)] = url
    try:
        yield adapter
    finally:
        URLS.pop(id(adapter), None)
        adapter.close()
        if backend not in ("memory", "sqlite"):
            drop_scope(url)


def requires(adapter: InventoryStore | PurchaseQueue, capability: str) -> None:
    """Skip unless the adapter declares `capability`, naming it in the reason."""
    if capability not in adapter.capabilities:
        pytest.skip(f"{type(adapter).__name__} lacks the capability {capability!r}")
