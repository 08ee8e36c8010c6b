"""The adapter registry: a URL scheme names the package that implements it.

Every backend package offers the same functions, found here by name and imported
lazily, so a backend's driver is needed only when that backend is used:

- `store_from_url(url)` and/or `queue_from_url(url)`: the adapters of the two ports;
- `scoped_url(url, scope)`: the URL of a fresh, private part of that server (a schema, a
  key prefix, a database) for one test or benchmark run, and `drop_scope(url)` to remove it;
- `bare_batched_writes(url, requests, batch_size)` (SQL stores): the store's own ceiling,
  a bare loop of batched conditional writes, which the benchmark compares workers with;
- `statement_replay(url, store, queue)` (SQLite, PostgreSQL): journals the workers' (or
  the store's) write statements from now on, to replay them bare on a copy
  (`StatementReplay`);
- `provision(url)` (DynamoDB): create the tables the URL names, idempotently;
- `bare_calls(url, calls, threads)` (DynamoDB): the service's own time for a mix of calls.

Only `eventpro.bootstrap` (and the adapters' own tests) import this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from eventpro.domain.model import Strategy
from eventpro.ports import InventoryStore, Misconfigured, PurchaseQueue, SynchronousSeller

PACKAGES: dict[str, str] = {
    "memory": "eventpro.adapters.memory",
    "memory+unsafe": "eventpro.adapters.memory.unsafe",
    "sqlite": "eventpro.adapters.sqlite",
    "postgresql": "eventpro.adapters.postgres",
    "postgres": "eventpro.adapters.postgres",
    "postgresql+unsafe": "eventpro.adapters.postgres.unsafe",
    "mysql": "eventpro.adapters.mysql",
    "mariadb": "eventpro.adapters.mysql",
    "redis": "eventpro.adapters.redis",
    "dynamodb": "eventpro.adapters.dynamodb",
}
STORES = frozenset(PACKAGES) - {"redis"}
QUEUES = frozenset({"memory", "memory+unsafe", "sqlite", "redis", "dynamodb"})
# The extra that installs a scheme's driver.
EXTRAS: dict[str, str] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "postgresql+unsafe": "postgres",
    "redis": "redis",
    "mysql": "mysql",
    "mariadb": "mysql",
    "dynamodb": "aws",
}
SELLER_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb"})


def _package(url: str, schemes: frozenset[str], role: str) -> ModuleType:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        valid = ", ".join(f"{s}://" for s in sorted(schemes))
        raise Misconfigured(f"unknown {role} URL scheme {scheme!r}; valid: {valid}")
    try:
        return importlib.import_module(PACKAGES[scheme])
    except ImportError as exc:
        extra = EXTRAS.get(scheme, scheme)
        raise Misconfigured(f"{scheme}:// needs `pip install 'eventpro[{extra}]'`") from exc


def _function(url: str, name: str, schemes: frozenset[str] = frozenset(PACKAGES)) -> Any:
    package = _package(url, schemes, "backend")
    found = getattr(package, name, None)
    if found is None:
        raise Misconfigured(f"{urlsplit(url).scheme}:// has no {name.replace('_', ' ')}")
    return found


def open_store(url: str) -> InventoryStore:
    """The inventory store for a URL such as `sqlite:///eventpro.db` or `memory://`."""
    store = _package(url, STORES, "database").store_from_url(url)
    assert isinstance(store, InventoryStore)
    return store


def open_queue(url: str) -> PurchaseQueue:
    """The purchase queue for a URL such as `sqlite:///eventpro.db` or `redis://…`."""
    queue = _package(url, QUEUES, "queue").queue_from_url(url)
    assert isinstance(queue, PurchaseQueue)
    return queue


def scoped_url(url: str, scope: str) -> str:
    """The URL of a fresh, private part of `url`'s server, named `scope`."""
    return cast(str, _function(url, "scoped_url")(url, scope))


def drop_scope(url: str) -> None:
    """Remove everything stored under a URL made by `scoped_url`."""
    _function(url, "drop_scope")(url)


def provision(url: str) -> list[str]:
    """Create what `url` names on its server (DynamoDB tables), leaving what exists; one
    line per thing, saying what was done."""
    return cast(list[str], _function(url, "provision")(url))


def bare_batched_writes(url: str, requests: int, batch_size: int) -> list[tuple[float, int]]:
    """The store's ceiling: `(time, requests so far)` marks of a bare loop of batched
    conditional writes on `url`'s server, as many requests as asked."""
    run = cast(
        Callable[[str, int, int], list[tuple[float, int]]], _function(url, "bare_batched_writes")
    )
    return run(url, requests, batch_size)


class StatementReplay(Protocol):
    def mark(self, requests: int) -> None: ...
    def run(self) -> list[tuple[float, int]]: ...
    def discard(self) -> None: ...


def statement_replay(url: str, store: object, queue: object) -> StatementReplay | None:
    """The workers' own statements on `url`, to replay bare (None: not offered here)."""
    try:
        found = _function(url, "statement_replay")
    except Misconfigured:
        return None
    return cast(StatementReplay, found(url, store, queue))


def bare_calls(url: str, calls: Sequence[tuple[str, int]], threads: int = 4) -> float:
    """The seconds a bare loop of `calls` ((operation, items per call)) takes on `url`'s
    service, from `threads` threads: the ceiling the AWS benchmark compares with."""
    run = cast(Callable[..., float], _function(url, "bare_calls"))
    return run(url, calls, threads)


def max_connections(url: str) -> int | None:
    """How many connections the database server of `url` takes (None: no such limit)."""
    try:
        found = _function(url, "max_connections")
    except Misconfigured:
        return None
    return int(found(url))


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
