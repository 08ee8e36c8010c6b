"""The worker loop: lease → decide → complete, with back-off when idle or unavailable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from eventpro.ports import Clock, InventoryStore, PurchaseQueue, StoreError
from eventpro.services.decisions import BatchResult, WorkerPolicy, decide_next_batch

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
    store: InventoryStore, queue: PurchaseQueue, clock: Clock, policy: WorkerPolicy
) -> BatchResult | None:
    """One step of a worker: a batch, or None when a backend failed (already logged)."""
    try:
        return decide_next_batch(store, queue, clock, policy)
    except StoreError as exc:
        log.warning("worker: backend failed, backing off: %s", exc)
        return None


def run_blocking(
    store: InventoryStore,
    queue: PurchaseQueue,
    clock: Clock,
    policy: WorkerPolicy,
    stop: threading.Event,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> None:
    """Decide batches until `stop` is set; a batch in progress is finished first."""
    idle, failing = Backoff(*IDLE_SLEEP), Backoff(*ERROR_SLEEP)
    while not stop.is_set():
        result = run_once(store, queue, clock, policy)
        if result is None:
            stop.wait(failing.next())
            continue
        failing.reset()
        if on_batch is not None and result.leased:
            on_batch(result)
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
    """The same loop inside an event loop (`serve`): each batch runs in a thread."""
    idle, failing = Backoff(*IDLE_SLEEP), Backoff(*ERROR_SLEEP)
    while not stop.is_set():
        result = await asyncio.to_thread(run_once, store, queue, clock, policy)
        if result is None:
            delay = failing.next()
        else:
            failing.reset()
            if on_batch is not None and result.leased:
                on_batch(result)
            delay = 0.0 if result.leased else idle.next()
            if result.leased:
                idle.reset()
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
