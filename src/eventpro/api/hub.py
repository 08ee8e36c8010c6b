"""The live streams of one API process: their bounds, and a watcher per event.

With a queue that has a decision feed (Redis pub/sub: capability `feed`), a thread hears
which events had decisions and wakes their watchers at once; the watchers' own ticks go
on beside it, since an announcement may be lost while Redis restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from eventpro.api.watch import Subscriber, Watcher
from eventpro.bootstrap import Container
from eventpro.ports import ALL_EVENTS, DecisionFeed, StoreError

log = logging.getLogger(__name__)


class Hub:
    """The watchers of one API process, and the bounds on how many streams are open."""

    def __init__(self, container: Container, max_streams: int, per_client: int) -> None:
        self.container = container
        self.max_streams, self.per_client = max_streams, per_client
        self.open = 0
        self.by_client: dict[str, int] = {}
        self.watchers: dict[str, Watcher] = {}
        self._listener: threading.Thread | None = None
        self._feed_asked = False
        self._stop = threading.Event()

    def refusal(self, client: str) -> str | None:
        """Why one more stream from `client` is refused, or None."""
        if self.open >= self.max_streams:
            return f"this process has {self.open} streams open, its maximum"
        if self.by_client.get(client, 0) >= self.per_client:
            return f"{client} has {self.per_client} streams open, the maximum per client"
        return None

    def subscribe(self, client: str, event_id: str, subscriber: Subscriber) -> None:
        self.open += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        watcher = self.watchers.get(event_id)
        if watcher is None:
            watcher = self.watchers[event_id] = Watcher(
                self.container, event_id, lambda: self._forget(event_id)
            )
        watcher.add(subscriber)
        if not self._feed_asked:
            self._feed_asked = True
            self._listen()

    def _listen(self) -> None:
        """Start the thread that hears the queue's decision feed, if it has one (capability
        `feed`): a decision then reaches the streams at once, not at the next tick."""
        if "feed" not in self.container.queue.capabilities:
            return
        loop = asyncio.get_running_loop()
        self._listener = threading.Thread(
            target=self._hear, args=(loop,), name="decision-feed", daemon=True
        )
        self._listener.start()

    def _hear(self, loop: asyncio.AbstractEventLoop) -> None:
        feed: DecisionFeed | None = None
        while not self._stop.is_set():
            try:
                feed = feed or self.container.queue.decision_feed()
                if feed is None:  # an adapter that claims `feed` but has none
                    return
                events = feed.wait(1.0)
            except StoreError:  # the queue is restarting: the ticks carry on meanwhile
                log.warning("decision feed failed; polling only", exc_info=True)
                self._stop.wait(1.0)
                continue
            if events:
                with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                    loop.call_soon_threadsafe(self._poke, events)
        if feed is not None:
            feed.close()

    def _poke(self, events: set[str]) -> None:
        for event_id, watcher in self.watchers.items():
            if event_id in events or ALL_EVENTS in events:
                watcher.poke()

    def unsubscribe(self, client: str, event_id: str, subscriber: Subscriber) -> None:
        self.open -= 1
        left = self.by_client.get(client, 1) - 1
        if left:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)
        watcher = self.watchers.get(event_id)
        if watcher is not None:
            watcher.remove(subscriber)

    def drain(self) -> None:
        """End every open stream (the process is stopping): graceful shutdown waits for open
        connections, and the clients resume elsewhere with Last-Event-ID."""
        for watcher in self.watchers.values():
            watcher.close()

    def _forget(self, event_id: str) -> None:
        watcher = self.watchers.get(event_id)
        if watcher is not None and watcher.idle:
            del self.watchers[event_id]

    async def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5.0)
        for watcher in list(self.watchers.values()):
            task = watcher._task
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
