"""Fixtures of the conformance suite: each adapter alone, beside the reference partner.

`store` runs every inventory store and `queue` every purchase queue of `tests/backends.py`,
each fresh and empty. A test of the store that needs a line uses the memory queue beside
it, and a test of the queue the memory store (`partner_queue`, `partner_store`), so that
a failure names one adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpro.bootstrap import open_queue, open_store
from eventpro.ports import InventoryStore, PurchaseQueue
from tests.backends import QUEUES, STORES, backend_url, opened


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InventoryStore]:
    """Each inventory store, fresh and empty."""
    url = backend_url(request.param, tmp_path)
    yield from opened(request.param, url, InventoryStore)  # type: ignore[misc]


@pytest.fixture(params=QUEUES)
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PurchaseQueue]:
    """Each purchase queue, fresh and empty."""
    url = backend_url(request.param, tmp_path / "queue")
    yield from opened(request.param, url, PurchaseQueue)  # type: ignore[misc]


@pytest.fixture
def partner_queue() -> Iterator[PurchaseQueue]:
    """The reference queue beside a store under test."""
    queue = open_queue("memory://")
    yield queue
    queue.close()


@pytest.fixture
def partner_store() -> Iterator[InventoryStore]:
    """The reference store beside a queue under test."""
    store = open_store("memory://")
    yield store
    store.close()
