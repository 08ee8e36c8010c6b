"""The composition root: the only module that reads Settings and opens adapters.

The API, the workers, the CLI, the benchmark, the demo and the replay reach every
backend through here: by URL (`open_store`, `open_queue`), or by tier (`Tier`, the
named deployments, each with a fresh scope of its servers for one run).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eventpro import adapters
from eventpro.config import Settings
from eventpro.domain.model import Strategy
from eventpro.ports import (
    Clock,
    IdSource,
    InventoryStore,
    Misconfigured,
    PurchaseQueue,
    SynchronousSeller,
)
from eventpro.services.admission import AdmissionService
from eventpro.services.decisions import WorkerPolicy
from eventpro.services.selling import SynchronousSale

log = logging.getLogger("eventpro")

open_store = adapters.open_store
open_queue = adapters.open_queue
scoped_url = adapters.scoped_url
drop_scope = adapters.drop_scope
provision = adapters.provision
bare_batched_writes = adapters.bare_batched_writes
statement_replay = adapters.statement_replay
bare_calls = adapters.bare_calls
max_connections = adapters.max_connections


def open_seller(settings: Settings) -> SynchronousSeller:
    s = settings
    return adapters.open_seller(s.database_url, s.strategy, s.pool_size, s.pool_timeout)


def worker_policy(settings: Settings) -> WorkerPolicy:
    """How workers decide, from the settings."""
    s = settings
    # one SQLite file for both gains nothing from deciding while the queue works; one
    # dynamodb:// URL names two tables, which do gain
    separate = s.database_url != s.effective_queue_url or s.database_url.startswith("dynamodb:")
    return WorkerPolicy(s.batch_size, s.visibility_timeout, s.max_attempts, overlap=separate)


@dataclass
class Container:
    """Everything a process needs, wired once."""

    settings: Settings
    store: InventoryStore
    queue: PurchaseQueue
    clock: Clock = field(default_factory=Clock)
    ids: IdSource = field(default_factory=IdSource)

    @property
    def policy(self) -> WorkerPolicy:
        return worker_policy(self.settings)

    def admission(self) -> AdmissionService:
        s = self.settings
        return AdmissionService(
            self.store,
            self.queue,
            self.clock,
            self.ids,
            max_line=s.max_line,
            retry_after=s.retry_after,
        )

    def synchronous_sale(self, admission: AdmissionService) -> SynchronousSale | None:
        """The synchronous strategy of the settings, or None for the queue (the product)."""
        s = self.settings
        if s.strategy is Strategy.QUEUED:
            return None
        # a thread-per-request server: more threads than connections, so some wait
        threads = s.pool_size + 50
        return SynchronousSale(admission, open_seller(s), self.clock, self.ids, threads)

    def close(self) -> None:
        self.queue.close()
        self.store.close()


def bootstrap(settings: Settings) -> Container:
    """Open the store and the queue named by the settings' URLs."""
    store = open_store(settings.database_url)
    try:
        queue = open_queue(settings.effective_queue_url)
    except BaseException:
        store.close()
        raise
    log.info(
        "backends: database=%s queue=%s",
        redact(settings.database_url),
        redact(settings.effective_queue_url),
    )
    return Container(settings=settings, store=store, queue=queue)


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


class Tier(enum.StrEnum):
    """The deployments a benchmark, the demo or the replay can run on."""

    SQLITE = "sqlite"  # the embedded tier: store and queue in one SQLite file
    POSTGRES = "postgres"  # the self-hosted cluster: PostgreSQL + Redis
    MARIADB = "mariadb"  # MySQL/MariaDB (the incident's database) + Redis
    AWS = "aws"  # store and line on DynamoDB (an account, or the emulator)

    @classmethod
    def named(cls, name: str) -> Tier:
        """A tier by its name, or by the older names `embedded` and `cluster`."""
        return cls({"embedded": "sqlite", "cluster": "postgres"}.get(name, name))


@dataclass(frozen=True)
class Servers:
    """The servers the cluster tiers use (the local ones by default)."""

    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mysql_url: str = "mysql://root@127.0.0.1:3306/test"
    # `dynamodb://PREFIX?region=…[&endpoint=…]`: the account (or emulator) of the aws tier;
    # each run gets a prefix of its own, so PREFIX is replaced
    dynamodb_url: str = ""


@dataclass(frozen=True)
class Backends:
    """Where one run keeps its data: the store's URL and the queue's."""

    database_url: str
    queue_url: str


def scoped_backends(tier: Tier, servers: Servers, workdir: Path) -> Backends:
    """Fresh, empty backends of `tier` for one run: a SQLite file in `workdir`, or a
    schema, database and key prefix (DynamoDB: a table prefix, tables created) of their
    own on the servers."""
    scope = f"eventpro_run_{uuid.uuid4().hex[:10]}"
    if tier is Tier.SQLITE:
        url = f"sqlite:///{workdir / f'{scope}.db'}"
        return Backends(url, url)
    if tier is Tier.AWS:
        if not servers.dynamodb_url:
            raise Misconfigured("the aws tier needs a dynamodb://PREFIX?region=… URL")
        url = scoped_url(servers.dynamodb_url, scope)
        return Backends(url, url)
    queue = scoped_url(servers.redis_url, scope)
    if tier is Tier.POSTGRES:
        return Backends(scoped_url(servers.postgres_url, scope), queue)
    return Backends(scoped_url(servers.mysql_url, scope), queue)


def drop_backends(backends: Backends) -> None:
    """Remove what a run stored in backends made by `scoped_backends`."""
    for url in dict.fromkeys((backends.database_url, backends.queue_url)):
        with contextlib.suppress(Misconfigured):
            drop_scope(url)


@contextlib.contextmanager
def fresh_backends(tier: Tier, servers: Servers, workdir: Path) -> Iterator[Backends]:
    """`scoped_backends`, dropped when the block ends."""
    backends = scoped_backends(tier, servers, workdir)
    try:
        yield backends
    finally:
        drop_backends(backends)
