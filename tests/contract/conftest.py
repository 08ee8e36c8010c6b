"""Fixtures of the conformance suite: every adapter pair, built by URL, on a fresh store.

Backends: `memory` (the reference model) and `sqlite` (a fresh file per test). Each test
names a contract of the ports; every adapter must pass all of them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpro.adapters import open_queue, open_store
from eventpro.ports import InventoryStore, PurchaseQueue

BACKENDS = ["memory", "sqlite"]


def urls(backend: str, tmp_path: Path) -> tuple[str, str]:
    if backend == "memory":
        return "memory://", "memory://"
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    return url, url


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[InventoryStore, PurchaseQueue]]:
    store_url, queue_url = urls(request.param, tmp_path)
    store, queue = open_store(store_url), open_queue(queue_url)
    yield store, queue
    queue.close()
    store.close()


@pytest.fixture
def store(backend: tuple[InventoryStore, PurchaseQueue]) -> InventoryStore:
    return backend[0]


@pytest.fixture
def queue(backend: tuple[InventoryStore, PurchaseQueue]) -> PurchaseQueue:
    return backend[1]
