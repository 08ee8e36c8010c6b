"""The worker loop: lease → decide → complete, with back-off when idle or unavailable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor

from eventpro.ports import Clock, InventoryStore, PurchaseQueue, StoreError
from eventpro.services.decisions import BatchResult, WorkerPolicy, decide_streak

log = logging.getLogger(__name__)

IDLE_SLEEP = (0.002, 0.05)  # seconds: first and longest sleep when the line is empty
ERROR_SLEEP = (0.1, 5.0)  # seconds: first and longest sleep when a backend fails


class Backoff:
    """Doubling sleeps between a floor and a ceiling, reset on success."""

    def __init__(self, floor: float, ceiling: float) -> None:
        self.floor, self.ceiling = floor, ceiling
        self.current = floor

    def next(self) -> float:
        delay = self.current
        self.current = min(self.ceiling, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.floor


def run_once(
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    overlap: Executor | None = None,
    go_on: Callable[[], bool] = lambda: True,
    on_batch: Callable[[BatchResult], None] | None = None,
    check_first: bool = False,
) -> BatchResult | None:
    """One step of a worker: a streak of batches, or None when a backend failed (logged).

    With `check_first` (after a failure) it leases nothing until both backends answer: a
    batch leased while the store is down only expires, and every expiry counts as a
    delivery of its requests, which would send them to the dead-letter queue after
    `max_attempts` although nothing is wrong with them.
    """
    try:
        if check_first:
            store.ping()
            queue.ping()
        return decide_streak(store, queue, clock, policy, overlap, go_on, on_batch)
    except StoreError as exc:
        log.warning("worker: backend failed, backing off: %s", exc)
        return None


@contextlib.contextmanager
def overlap_thread(policy: WorkerPolicy) -> Iterator[Executor | None]:
    """The thread in which the store decides while the queue works, if the policy says so."""
    if not policy.overlap:
        yield None
        return
    with ThreadPoolExecutor(1, thread_name_prefix="eventpro-store") as executor:
        yield executor


def run_blocking(
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    stop: threading.Event,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> None:
    """Decide batches until `stop` is set; the batches in progress are finished first."""
    idle, failing = Backoff(*IDLE_SLEEP), Backoff(*ERROR_SLEEP)
    with overlap_thread(policy) as overlap:
        failed = False
        while not stop.is_set():
            result = run_once(
                store, queue, clock, policy, overlap, lambda: not stop.is_set(), on_batch, failed
            )
            failed = result is None
            if result is None:
                stop.wait(failing.next())
                continue
            failing.reset()
            if result.leased:
                idle.reset()
            else:
                stop.wait(idle.next())


async def run_async(
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    stop: asyncio.Event,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> None:
    """The same loop inside an event loop (`serve`): each streak runs in a thread."""
    idle, failing = Backoff(*IDLE_SLEEP), Backoff(*ERROR_SLEEP)
    with overlap_thread(policy) as overlap:
        failed = False
        while not stop.is_set():
            result = await asyncio.to_thread(
                run_once,
                store,
                queue,
                clock,
                policy,
                overlap,
                lambda: not stop.is_set(),
                on_batch,
                failed,
            )
            failed = result is None
            if result is None:
                delay = failing.next()
            else:
                failing.reset()
                delay = 0.0 if result.leased else idle.next()
                if result.leased:
                    idle.reset()
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)


@contextlib.asynccontextmanager
async def running(
    loops: int,
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> AsyncIterator[None]:
    """`loops` worker loops in this event loop while the block runs; on leaving it, each
    finishes its batch in progress, then returns (`eventpro serve`'s in-process workers)."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_async(store, queue, clock, policy, stop, on_batch))
        for _ in range(loops)
    ]
    log.info("%d in-process worker loop(s)", loops)
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
