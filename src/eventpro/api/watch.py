"""One watcher per event and process feeds every live stream of that event.

A stream does not read the store itself: it subscribes to its event's `Watcher`, which
reads the event (at most once a second) and every watched purchase (one batch, a few
times a second) while at least one stream is open, and hands each stream the newest body
that changed for it. Ten thousand streams on one event cost one read per tick, not ten
thousand.

On the cluster tier the watcher reads the shared PostgreSQL store and Redis line: woken
at once by the Redis decision feed (`api/hub.py`), and every tick regardless, so a
decision made by a worker on any machine reaches every API process within one tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from eventpro.bootstrap import Container
from eventpro.services.events import view_event
from eventpro.services.purchases import PurchaseView, view_purchases
from eventpro.services.wire import event_json, purchase_json

log = logging.getLogger(__name__)

TICK = 0.25  # seconds between reads of the watched purchases: a few updates a second
EVENT_EVERY = 1.0  # seconds between reads of the event itself: at most once a second
# seconds: read every watched purchase at least this often, whatever the line's mark says.
# Only a safety net: every queue's mark moves with every change a stream shows (the
# contract suite checks it), and a full read of 10,000 purchases costs a third of a
# second of CPU, which every 10 s was a third of what idle streams cost.
FULL_READ_EVERY = 60.0
CHANGES = ("status", "ahead", "reason", "order")  # what a purchase stream sends updates for


@dataclass(eq=False)
class Subscriber:
    """One open stream: the newest body not yet sent, and a flag that wakes the stream."""

    purchase_id: str | None = None
    body: dict[str, Any] | None = None
    final: bool = False
    closed: bool = False  # the process is shutting down: end the stream, the client resumes
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, body: dict[str, Any], final: bool) -> None:
        self.body, self.final = body, final
        self.changed.set()

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    def take(self) -> tuple[dict[str, Any] | None, bool]:
        self.changed.clear()
        body, self.body = self.body, None
        return body, self.final


class Eta:
    """Seconds until a queued purchase's turn, from how fast `ahead` has been falling."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None

    def __call__(self, ahead: int) -> float | None:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, ahead)
            return None
        start, start_ahead = self.first
        rate = (start_ahead - ahead) / (now - start) if now > start else 0
        return round(ahead / rate, 1) if rate > 0 else None


def purchase_body(view: PurchaseView, eta: Eta | None = None) -> tuple[dict[str, Any], bool]:
    """The stream's JSON of a purchase (the GET's, plus `eta_seconds` while undecided)."""
    body: dict[str, Any] = purchase_json(view)
    final = view.purchase.status.is_final
    if not final:
        body["eta_seconds"] = eta(view.ahead) if eta else None
    return body, final


class Watcher:
    """The reads of one event for every stream of it in this process."""

    def __init__(self, container: Container, event_id: str, on_idle: Callable[[], None]) -> None:
        self.container, self.event_id, self._on_idle = container, event_id, on_idle
        self.event_streams: set[Subscriber] = set()
        self.purchase_streams: dict[str, set[Subscriber]] = {}
        self._etas: dict[str, Eta] = {}
        self._last: dict[str, tuple[dict[str, Any], bool]] = {}
        self._event_read_at = 0.0
        self._mark: Hashable = None
        self._new_streams = False
        self._full_read_at = 0.0
        self._poked = False  # the decision feed named this event since the last read
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, subscriber: Subscriber) -> None:
        if subscriber.purchase_id is None:
            self.event_streams.add(subscriber)
            self._event_read_at = 0.0  # a new event stream wants the event at once
        else:
            self.purchase_streams.setdefault(subscriber.purchase_id, set()).add(subscriber)
            self._new_streams = True
            last = self._last.get(subscriber.purchase_id)
            if last is not None:  # what the other streams of this purchase were sent last
                subscriber.offer(*last)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber.purchase_id is None:
            self.event_streams.discard(subscriber)
            return
        streams = self.purchase_streams.get(subscriber.purchase_id)
        if streams is not None:
            streams.discard(subscriber)
            if not streams:
                del self.purchase_streams[subscriber.purchase_id]
                self._etas.pop(subscriber.purchase_id, None)
                self._last.pop(subscriber.purchase_id, None)

    def close(self) -> None:
        for subscriber in self.event_streams:
            subscriber.close()
        for streams in self.purchase_streams.values():
            for subscriber in streams:
                subscriber.close()

    def poke(self) -> None:
        """Read the line at once: the decision feed says it changed."""
        self._poked = True
        self._wake.set()

    @property
    def idle(self) -> bool:
        return not self.event_streams and not self.purchase_streams

    async def _run(self) -> None:
        try:
            while not self.idle:
                try:
                    await self._tick()
                except Exception:  # a backend hiccup: the streams wait for the next tick
                    log.warning("watching event %s failed", self.event_id, exc_info=True)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            self._task = None
            self._on_idle()

    async def _tick(self) -> None:
        now = time.monotonic()
        if self.event_streams and now - self._event_read_at >= EVENT_EVERY:
            self._event_read_at = now
            await self._read_event()
        if self.purchase_streams and await self._line_moved(now):
            await self._read_purchases()

    async def _line_moved(self, now: float) -> bool:
        """Whether the watched purchases are worth reading: the line's mark moved (see
        `PurchaseQueue.line_mark`), the decision feed named the event, a stream is new, or
        FULL_READ_EVERY passed. An idle line costs one cheap read per tick, however many
        streams."""
        mark = await asyncio.to_thread(self.container.queue.line_mark, self.event_id)
        moved = mark != self._mark or self._new_streams or now >= self._full_read_at
        moved = moved or self._poked
        if moved:
            self._mark, self._new_streams, self._poked = mark, False, False
            self._full_read_at = now + FULL_READ_EVERY
        return moved

    async def _read_event(self) -> None:
        c = self.container
        view = await asyncio.to_thread(view_event, c.store, c.queue, c.clock, self.event_id)
        if view is None:
            return
        body = event_json(view)
        settled = view.status.value == "sold_out" and view.queue_depth == 0
        for subscriber in self.event_streams:
            subscriber.offer(body, settled)

    async def _read_purchases(self) -> None:
        c = self.container
        # A purchase whose final body was handed out needs no more reads: its streams are
        # closing (a new stream of it is sent that body when it subscribes).
        ids = [pid for pid in self.purchase_streams if not self._is_final(pid)]
        if not ids:
            return
        views = await asyncio.to_thread(view_purchases, c.store, c.queue, ids)
        for purchase_id, view in views.items():
            eta = self._etas.setdefault(purchase_id, Eta())
            body, final = purchase_body(view, eta)
            if self._changed(purchase_id, body, final):
                for subscriber in self.purchase_streams.get(purchase_id, ()):
                    subscriber.offer(body, final)

    def _is_final(self, purchase_id: str) -> bool:
        last = self._last.get(purchase_id)
        return last is not None and last[1]

    def _changed(self, purchase_id: str, body: dict[str, Any], final: bool) -> bool:
        """Whether status or `ahead` moved (the ETA alone is no reason to send)."""
        last = self._last.get(purchase_id)
        if last is not None and all(last[0][k] == body[k] for k in CHANGES):
            return False
        self._last[purchase_id] = (body, final)
        return True
