"""The adapter registry: a URL scheme names the module that builds the adapter.

Modules are imported lazily, so a backend's driver is needed only when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from eventpro.ports import InventoryStore, Misconfigured, PurchaseQueue, Strategy, SynchronousSeller

STORES: dict[str, str] = {
    "memory": "eventpro.adapters.memory:store_from_url",
    "memory+unsafe": "eventpro.adapters.memory:store_from_url",
    "sqlite": "eventpro.adapters.sqlite:store_from_url",
    "postgresql": "eventpro.adapters.postgres:store_from_url",
    "postgres": "eventpro.adapters.postgres:store_from_url",
    "postgresql+unsafe": "eventpro.adapters.postgres.unsafe:store_from_url",
    "mysql": "eventpro.adapters.mysql:store_from_url",
    "mariadb": "eventpro.adapters.mysql:store_from_url",
    "dynamodb": "eventpro.adapters.dynamodb:store_from_url",
}
QUEUES: dict[str, str] = {
    "memory": "eventpro.adapters.memory:queue_from_url",
    "memory+unsafe": "eventpro.adapters.memory:queue_from_url",
    "sqlite": "eventpro.adapters.sqlite:queue_from_url",
    "redis": "eventpro.adapters.redis:queue_from_url",
    "dynamodb": "eventpro.adapters.dynamodb:queue_from_url",
}
EXTRAS: dict[str, str] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "redis": "redis",
    "mysql": "mysql",
    "mariadb": "mysql",
    "dynamodb": "aws",
}
SELLER_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb"})


def _factory(registry: dict[str, str], url: str, role: str) -> Callable[[str], object]:
    scheme = urlsplit(url).scheme
    target = registry.get(scheme)
    if target is None:
        valid = ", ".join(f"{s}://" for s in sorted(registry))
        raise Misconfigured(f"unknown {role} URL scheme {scheme!r}; valid: {valid}")
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRAS.get(scheme, scheme)
        raise Misconfigured(f"{scheme}:// needs `pip install 'eventpro[{extra}]'`") from exc
    return cast(Callable[[str], object], getattr(module, name))


def open_store(url: str) -> InventoryStore:
    """The inventory store for a URL such as `sqlite:///eventpro.db` or `memory://`."""
    store = _factory(STORES, url, "database")(url)
    assert isinstance(store, InventoryStore)
    return store


def open_queue(url: str) -> PurchaseQueue:
    """The purchase queue for a URL such as `sqlite:///eventpro.db` or `memory://`."""
    queue = _factory(QUEUES, url, "queue")(url)
    assert isinstance(queue, PurchaseQueue)
    return queue


def open_seller(
    url: str, strategy: Strategy, pool_size: int, pool_timeout: float
) -> SynchronousSeller:
    """A synchronous strategy over the store's database (`eventpro replay` measures them)."""
    if urlsplit(url).scheme not in SELLER_SCHEMES:
        valid = ", ".join(f"{s}://" for s in sorted(SELLER_SCHEMES))
        raise Misconfigured(f"the {strategy} strategy needs a SQL database: {valid}")
    try:
        from eventpro.adapters.synchronous import SqlSeller
    except ImportError as exc:
        raise Misconfigured("synchronous strategies need `pip install 'eventpro[replay]'`") from exc
    return SqlSeller(url, strategy, pool_size, pool_timeout)
