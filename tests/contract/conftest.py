"""Fixtures of the conformance suite: every adapter pair, built by URL, on a fresh store.

Backends: `memory` (the reference model), `sqlite` (a fresh file per test) and, when
`EVENTPRO_TEST_POSTGRES_URL` is set, `postgres` (a fresh schema per test; its queue is
the memory one until the Redis queue lands). A server that does not answer skips the
backend locally and fails the run under `CI=true`. Each test names a contract of the
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
BACKENDS = ["memory", "sqlite", *(["postgres"] if POSTGRES_URL else [])]


def urls(backend: str, tmp_path: Path, schema: str) -> tuple[str, str]:
    if backend == "memory":
        return "memory://", "memory://"
    if backend == "postgres":
        assert POSTGRES_URL is not None
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}schema={schema}", "memory://"
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    return url, url


_unreachable: dict[str, str] = {}


def open_backend(backend: str, store_url: str) -> InventoryStore:
    """Open the store; a server that does not answer fails under CI and skips elsewhere."""
    reason = _unreachable.get(backend)
    if reason is None:
        try:
            return open_store(store_url)
        except Unavailable as exc:
            reason = _unreachable[backend] = f"{backend} not reachable: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


def drop_schema(store: InventoryStore, schema: str) -> None:
    db = getattr(store, "db", None)
    if db is not None and getattr(db, "schema", None) == schema:
        with db.transaction() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[InventoryStore, PurchaseQueue]]:
    schema = f"eventpro_test_{uuid.uuid4().hex[:12]}"
    store_url, queue_url = urls(request.param, tmp_path, schema)
    store, queue = open_backend(request.param, store_url), open_queue(queue_url)
    yield store, queue
    queue.close()
    drop_schema(store, schema)
    store.close()


@pytest.fixture
def store(backend: tuple[InventoryStore, PurchaseQueue]) -> InventoryStore:
    return backend[0]


@pytest.fixture
def queue(backend: tuple[InventoryStore, PurchaseQueue]) -> PurchaseQueue:
    return backend[1]
