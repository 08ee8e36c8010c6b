"""Deciding the line: lease a batch, decide it with conditional writes, complete it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from eventpro.ports import Clock, Delivery, InventoryStore, PurchaseQueue, Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    batch_size: int = 500
    visibility_timeout: float = 30.0
    max_attempts: int = 5


@dataclass(frozen=True, slots=True)
class BatchResult:
    leased: int = 0
    decided: int = 0
    dead_lettered: int = 0


def decide_next_batch(
    store: InventoryStore, queue: PurchaseQueue, clock: Clock, policy: WorkerPolicy
) -> BatchResult:
    """Lease one batch of one event, decide it in position order and complete it.

    If the batch as a whole fails, each request is tried alone, so that one poison
    request is retried and dead-lettered without holding the others back.
    `Unavailable` propagates: the caller backs off and the leases expire by themselves.
    """
    leased = queue.lease(policy.batch_size, policy.visibility_timeout, clock.now())
    if not leased:
        return BatchResult()
    # A request delivered more often than allowed has crashed or stalled its workers
    # before (they died holding it): dead-letter it rather than risk another crash.
    worn = [d for d in leased if d.attempt > policy.max_attempts]
    for delivery in worn:
        queue.fail(delivery, "delivered too often without a decision", 1, clock.now())
    deliveries = [d for d in leased if d.attempt <= policy.max_attempts]
    if not deliveries:
        return BatchResult(leased=len(leased), dead_lettered=len(worn))
    try:
        _decide(store, queue, clock, deliveries)
        return BatchResult(len(leased), len(deliveries), len(worn))
    except Unavailable:
        raise
    except Exception:
        log.exception("batch of %d failed; deciding one by one", len(deliveries))
    decided, dead = 0, len(worn)
    for delivery in deliveries:
        try:
            _decide(store, queue, clock, [delivery])
            decided += 1
        except Unavailable:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            dead += queue.fail(delivery, error, policy.max_attempts, clock.now())
    return BatchResult(leased=len(leased), decided=decided, dead_lettered=dead)


def _decide(
    store: InventoryStore, queue: PurchaseQueue, clock: Clock, deliveries: Sequence[Delivery]
) -> None:
    batch = store.decide([d.purchase for d in deliveries], clock.now())
    if batch.emptied_sections:
        queue.mark_sold_out(deliveries[0].purchase.event_id, batch.emptied_sections)
    queue.complete(deliveries, batch.decisions)
