"""The composition root: the only module that reads Settings and opens adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eventpro.adapters import open_queue, open_seller, open_store
from eventpro.config import Settings
from eventpro.ports import Clock, IdSource, InventoryStore, PurchaseQueue, Strategy
from eventpro.services.admission import AdmissionService
from eventpro.services.decisions import WorkerPolicy
from eventpro.services.selling import SynchronousSale

log = logging.getLogger("eventpro")


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
        s = self.settings
        # one SQLite file for both gains nothing from deciding while the queue works
        separate = s.database_url != s.effective_queue_url
        return WorkerPolicy(s.batch_size, s.visibility_timeout, s.max_attempts, overlap=separate)

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
        seller = open_seller(s.database_url, s.strategy, s.pool_size, s.pool_timeout)
        # a thread-per-request server: more threads than connections, so some wait
        threads = s.pool_size + 50
        return SynchronousSale(admission, seller, self.clock, self.ids, threads)

    def close(self) -> None:
        self.queue.close()
        self.store.close()


def bootstrap(settings: Settings) -> Container:
    """Open the store and the queue named by the settings' URLs."""
    store = open_store(settings.database_url)
    queue = open_queue(settings.effective_queue_url)
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
