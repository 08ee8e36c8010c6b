"""Deciding the line: lease a batch, decide it with conditional writes, complete it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace

from eventpro.domain.model import DecidedBatch, Purchase, PurchaseStatus
from eventpro.ports import Clock, Delivery, InventoryStore, PurchaseQueue, Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    batch_size: int = 500
    visibility_timeout: float = 30.0
    max_attempts: int = 5
    # Batches of one event decided in a row before a fresh lease picks the next event.
    streak: int = 20
    # Decide a batch while the queue completes the one before and leases the next: worth
    # it when the store and the queue are two servers, not one SQLite file.
    overlap: bool = False


@dataclass(frozen=True, slots=True)
class BatchResult:
    leased: int = 0
    decided: int = 0
    dead_lettered: int = 0
    confirmed: int = 0  # of `decided`; the others were rejected

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.leased + other.leased,
            self.decided + other.decided,
            self.dead_lettered + other.dead_lettered,
            self.confirmed + other.confirmed,
        )

    @staticmethod
    def of(decided: DecidedBatch) -> BatchResult:
        confirmed = sum(d.status is PurchaseStatus.CONFIRMED for d in decided.decisions)
        return BatchResult(decided=len(decided.decisions), confirmed=confirmed)


def decide_next_batch(
    store: InventoryStore, queue: PurchaseQueue, clock: Clock, policy: WorkerPolicy
) -> BatchResult:
    """Lease one batch of one event, decide it in position order and complete it."""
    return decide_streak(store, queue, clock, replace(policy, streak=1))


def decide_streak(
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    overlap: Executor | None = None,
    go_on: Callable[[], bool] = lambda: True,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> BatchResult:
    """Lease a batch of one event and go on with that event's line, up to `policy.streak`
    batches while `go_on()` holds; return what was leased, decided and dead-lettered.

    Each next batch is a continuing lease, taken while the batch before is completed; with
    an `overlap` executor the store decides batch k in its thread meanwhile, so the store
    and the queue work at once. Batch k+1 is decided only after batch k: decisions still
    follow positions. If a batch as a whole fails, each request is tried alone, so that
    one poison request is retried and dead-lettered without holding the others back.
    `Unavailable` propagates: the caller backs off and the leases expire by themselves.
    """
    total = BatchResult()
    leased = queue.lease(policy.batch_size, policy.visibility_timeout, clock.now())
    decided: tuple[list[Delivery], DecidedBatch] | None = None  # not completed yet
    batches = 0
    while leased:
        batches += 1
        deliveries, result = _drop_worn(queue, clock, policy, leased)
        deciding = _start(overlap, store, [d.purchase for d in deliveries], clock)
        try:
            if decided is not None:
                _complete(queue, *decided)
                decided = None
            following: list[Delivery] = []
            if batches < policy.streak and go_on():
                after = leased[0].lease_id
                following = queue.lease(
                    policy.batch_size, policy.visibility_timeout, clock.now(), after=after
                )
        finally:
            failure = deciding.exception()  # waits for the store
        if failure is None:
            decided = (deliveries, deciding.result())
            result += BatchResult.of(decided[1])
        elif isinstance(failure, Unavailable):
            raise failure
        else:
            log.error("batch of %d failed; deciding one by one", len(deliveries), exc_info=failure)
            result += _one_by_one(store, queue, clock, policy, deliveries)
        if on_batch is not None:
            on_batch(result)
        total += result
        leased = following
    if decided is not None:
        _complete(queue, *decided)
    return total


def _drop_worn(
    queue: PurchaseQueue, clock: Clock, policy: WorkerPolicy, leased: list[Delivery]
) -> tuple[list[Delivery], BatchResult]:
    """The deliveries to decide. A request delivered more often than allowed has crashed
    or stalled its workers before (they died holding it): dead-letter it rather than risk
    another crash."""
    worn = [d for d in leased if d.attempt > policy.max_attempts]
    for delivery in worn:
        queue.fail(delivery, "delivered too often without a decision", 1, clock.now())
    deliveries = [d for d in leased if d.attempt <= policy.max_attempts]
    return deliveries, BatchResult(leased=len(leased), dead_lettered=len(worn))


def _start(
    overlap: Executor | None, store: InventoryStore, purchases: list[Purchase], clock: Clock
) -> Future[DecidedBatch]:
    """Decide in the executor's thread, or here and now without one."""
    if overlap is not None:
        return overlap.submit(_decide_if_any, store, purchases, clock)
    done: Future[DecidedBatch] = Future()
    try:
        done.set_result(_decide_if_any(store, purchases, clock))
    except Exception as exc:
        done.set_exception(exc)
    return done


def _decide_if_any(store: InventoryStore, purchases: list[Purchase], clock: Clock) -> DecidedBatch:
    return store.decide(purchases, clock.now()) if purchases else DecidedBatch([])


def _complete(queue: PurchaseQueue, deliveries: Sequence[Delivery], batch: DecidedBatch) -> None:
    if not deliveries:
        return
    if batch.emptied_sections:
        queue.mark_sold_out(deliveries[0].purchase.event_id, batch.emptied_sections)
    queue.complete(deliveries, batch.decisions)


def _one_by_one(
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    deliveries: Sequence[Delivery],
) -> BatchResult:
    result = BatchResult()
    for delivery in deliveries:
        try:
            alone = store.decide([delivery.purchase], clock.now())
            _complete(queue, [delivery], alone)
            result += BatchResult.of(alone)
        except Unavailable:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            dead = queue.fail(delivery, error, policy.max_attempts, clock.now())
            result += BatchResult(dead_lettered=int(dead))
    return result
