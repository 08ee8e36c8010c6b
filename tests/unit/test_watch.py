"""The watcher that feeds live streams reads a purchase only when its line's mark moves:
a change must never hide behind a mark it read before the change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

from eventpro.adapters.memory.queue import MemoryQueue
from eventpro.adapters.memory.store import MemoryInventoryStore
from eventpro.api.watch import Subscriber, Watcher
from eventpro.bootstrap import Container
from eventpro.config import Settings
from tests.contract.helpers import NOW, admission, new_event


class _ChangedRightAfterTheMark(MemoryQueue):
    """The real in-memory line, where a worker's step lands between the watcher's read of
    the mark and its read of the purchases (on a server, another process's write)."""

    def __init__(self) -> None:
        super().__init__()
        self.after_next_mark: Callable[[], None] | None = None

    def line_mark(self, event_id: str) -> Hashable:
        mark = super().line_mark(event_id)
        step, self.after_next_mark = self.after_next_mark, None
        if step is not None:
            step()
        return mark


async def _next_status(subscriber: Subscriber, within: float) -> str | None:
    try:
        async with asyncio.timeout(within):
            await subscriber.changed.wait()
    except TimeoutError:
        return None
    body, _ = subscriber.take()
    return None if body is None else str(body["status"])


def test_a_redrive_reaches_a_stream_that_read_the_mark_before_the_dead_letter() -> None:
    """The dead letter lands between the two reads, so the stream shows `failed` with the
    mark of before it; the redrive then puts the line's counters back as they were. With
    a mark that came back to that value (as every adapter's did), the stream went on
    showing `failed` until its full read, a minute later."""
    store, queue = MemoryInventoryStore(), _ChangedRightAfterTheMark()
    event = new_event(store)
    (admitted,) = queue.admit([admission(event, "k1")])
    purchase_id = admitted.purchase.id

    def dead_letter() -> None:
        (delivery,) = queue.lease(10, 30, NOW)
        assert queue.fail(delivery, "poison", 1, NOW)

    async def run() -> list[str | None]:
        container = Container(Settings(), store, queue)
        watcher = Watcher(container, event.id, on_idle=lambda: None)
        subscriber = Subscriber(purchase_id=purchase_id)
        queue.after_next_mark = dead_letter
        watcher.add(subscriber)
        seen = [await _next_status(subscriber, 2.0)]
        assert queue.redrive(event.id, None) == 1
        seen.append(await _next_status(subscriber, 2.0))  # eight ticks
        watcher.remove(subscriber)
        return seen

    assert asyncio.run(run()) == ["failed", "queued"]
