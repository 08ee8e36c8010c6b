"""Buyers' polls, read in groups: what many buyers ask at one moment costs one batch read.

Tens of thousands of waiting buyers poll `GET /v1/purchases/{id}` about once a second.
Each poll on its own cost a hop to a thread and two or three reads of the backends; a
poll cost more than an admission, which the group committer already writes in groups.
`PollReader` gathers the polls that arrive while a read is under way and reads them with
one call of `read_many` (one transaction, or one script call). One group at a time by
default: with four reading threads, groups were four times smaller and the threads fought
the event loop for the interpreter lock; under wrk a poll cost the server 30 to 40 % more
CPU (docs/perf.md). Reads need no order, so `in_flight` may allow more at once.

`GroupReads` reads a group where it costs the server least (docs/perf.md):

- on the event loop itself when both backends are `local` (a SQLite file in WAL mode,
  whose readers never wait for its writer): a hop to a thread and back, and the thread's
  turns with the loop for the interpreter lock, cost more than the read;
- with the queue's asynchronous client on the loop (capability `async_watch`, Redis), and
  the orders of decided purchases from the store in a thread;
- else in one reader thread, so that the loop never waits for a network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventpro.ports import InventoryStore, PurchaseQueue
from eventpro.services.purchases import PurchaseView, order_ids_of, view_purchases, views_of

ReadMany = Callable[[Sequence[str]], Awaitable[dict[str, PurchaseView]]]
# Called once a poll's group is read: with its view (None for an unknown id), or with the
# read's error. It runs on the loop, inside the read, so it must not raise.
Reply = Callable[[PurchaseView | None, Exception | None], None]


class PollReader:
    """`view(purchase_id)` for an event loop, read in groups by `read_many`."""

    def __init__(self, read_many: ReadMany, max_group: int = 500, in_flight: int = 1) -> None:
        self._read_many = read_many
        self._max_group = max_group
        self._slots = asyncio.Semaphore(in_flight)
        self._pending: list[tuple[str, Reply]] = []
        self._gatherer: asyncio.Task[None] | None = None  # the task that reads the groups

    async def view(self, purchase_id: str) -> PurchaseView | None:
        """The purchase with `ahead` and its order, or None for an unknown id."""
        future: asyncio.Future[PurchaseView | None] = asyncio.get_running_loop().create_future()

        def reply(view: PurchaseView | None, error: Exception | None) -> None:
            if future.done():  # cancelled: nobody waits
                return
            if error is None:
                future.set_result(view)
            else:
                future.set_exception(error)

        self.submit(purchase_id, reply)
        return await future

    def submit(self, purchase_id: str, reply: Reply) -> None:
        """`view` for a caller that needs no coroutine: `reply` is called from the group's
        read, with no task or future per poll (`serve`'s poll, api/hot.py)."""
        self._pending.append((purchase_id, reply))
        if self._gatherer is None or self._gatherer.done():
            self._gatherer = asyncio.get_running_loop().create_task(self._gather())

    async def _gather(self) -> None:
        while self._pending:
            await self._slots.acquire()  # wait for a read to end: meanwhile, more come
            group = self._pending[: self._max_group]
            del self._pending[: self._max_group]
            asyncio.get_running_loop().create_task(self._read(group))

    async def _read(self, group: list[tuple[str, Reply]]) -> None:
        try:
            views = await self._read_many(list(dict.fromkeys(pid for pid, _ in group)))
        except Exception as exc:
            for _, reply in group:
                reply(None, exc)
            return
        finally:
            self._slots.release()
        for purchase_id, reply in group:
            reply(views.get(purchase_id), None)


class GroupReads:
    """Reads a group of polls from these backends (see the module); `close` on the loop."""

    def __init__(self, store: InventoryStore, queue: PurchaseQueue) -> None:
        self._store, self._queue = store, queue
        local = "local" in store.capabilities and "local" in queue.capabilities
        self._thread = None if local else ThreadPoolExecutor(1, thread_name_prefix="eventpro-polls")
        self._native = not local and "async_watch" in queue.capabilities

    async def __call__(self, purchase_ids: Sequence[str]) -> dict[str, PurchaseView]:
        if self._thread is None:  # local: on the loop, it never waits
            return view_purchases(self._store, self._queue, purchase_ids)
        loop = asyncio.get_running_loop()
        if not self._native:
            return await loop.run_in_executor(
                self._thread, view_purchases, self._store, self._queue, purchase_ids
            )
        watched = await self._queue.watch_async(purchase_ids)
        order_ids = order_ids_of(watched)
        orders = {}
        if order_ids:
            orders = await loop.run_in_executor(self._thread, self._store.get_orders, order_ids)
        return views_of(watched, orders)

    async def close(self) -> None:
        if self._native:
            await self._queue.close_async()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
