"""Fixtures of the conformance suite: every adapter pair, built by URL, on a fresh store.

Backends: `memory` (the reference model), `sqlite` (a fresh file per test) and, when
`EVENTPRO_TEST_POSTGRES_URL` and `EVENTPRO_TEST_REDIS_URL` are set, `cluster`: the
PostgreSQL store (a fresh schema per test) with the Redis queue (a fresh key prefix per
test). A server that does not answer skips the backend locally and fails the run under
`CI=true`. Each test names a contract of the
ports; every adapter must pass all of them unchanged.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpro.adapters import open_queue, open_store
from eventpro.ports import InventoryStore, PurchaseQueue, Unavailable

POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("EVENTPRO_TEST_REDIS_URL")
BACKENDS = ["memory", "sqlite", *(["cluster"] if POSTGRES_URL and REDIS_URL else [])]


def _with(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


def urls(backend: str, tmp_path: Path, scope: str) -> tuple[str, str]:
    if backend == "memory":
        return "memory://", "memory://"
    if backend == "cluster":
        assert POSTGRES_URL is not None and REDIS_URL is not None
        return _with(POSTGRES_URL, "schema", scope), _with(REDIS_URL, "prefix", scope)
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    return url, url


_unreachable: dict[str, str] = {}


def open_backend(
    backend: str, store_url: str, queue_url: str
) -> tuple[InventoryStore, PurchaseQueue]:
    """Open both; a server that does not answer fails under CI and skips elsewhere."""
    reason = _unreachable.get(backend)
    if reason is None:
        try:
            return open_store(store_url), open_queue(queue_url)
        except Unavailable as exc:
            reason = _unreachable[backend] = f"{backend} not reachable: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


def clean_up(store: InventoryStore, queue: PurchaseQueue, scope: str) -> None:
    """Drop the test's PostgreSQL schema and Redis keys, if it had any."""
    db = getattr(store, "db", None)
    if db is not None and getattr(db, "schema", None) == scope:
        with db.transaction() as conn:
            conn.execute(f'DROP SCHEMA "{scope}" CASCADE')
    client = getattr(queue, "client", None)
    if client is not None and getattr(queue, "prefix", None) == scope:
        keys = list(client.scan_iter(match=f"{scope}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[InventoryStore, PurchaseQueue]]:
    scope = f"eventpro_test_{uuid.uuid4().hex[:12]}"
    store, queue = open_backend(request.param, *urls(request.param, tmp_path, scope))
    yield store, queue
    clean_up(store, queue, scope)
    queue.close()
    store.close()


@pytest.fixture
def store(backend: tuple[InventoryStore, PurchaseQueue]) -> InventoryStore:
    return backend[0]


@pytest.fixture
def queue(backend: tuple[InventoryStore, PurchaseQueue]) -> PurchaseQueue:
    return backend[1]
