"""Buyers' polls, read in groups: what many buyers ask at one moment costs one batch read.

Tens of thousands of waiting buyers poll `GET /v1/purchases/{id}` about once a second.
Each poll on its own cost a hop to a thread and two or three reads of the backends; a
poll cost more than an admission, which the group committer already writes in groups.
`PollReader` gathers the polls that arrive while a read is under way and reads them with
one call of `read_many` (one transaction, or one script call) in a worker thread. One
reader by default: with four, groups were four times smaller and the threads fought the
event loop for the interpreter lock; under wrk a poll cost the server 30 to 40 % more CPU
(docs/perf.md). Reads need no order, so `readers` may allow more at once.

`readers=0` reads on the event loop itself, for backends whose reads are local and never
wait (capability `local`: a SQLite file in WAL mode, whose readers do not wait for its
writer). There the hop to a thread and back, and the thread's turns with the loop for the
interpreter lock, cost more than the read: a poll cost the server 30 % less CPU read on
the loop (docs/perf.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventpro.services.purchases import PurchaseView

ReadMany = Callable[[Sequence[str]], dict[str, PurchaseView]]


class PollReader:
    """`view(purchase_id)` for an event loop, read in groups by `read_many`."""

    def __init__(self, read_many: ReadMany, max_group: int = 500, readers: int = 1) -> None:
        self._read_many = read_many
        self._max_group = max_group
        self._readers = asyncio.Semaphore(max(1, readers))
        self._executor = (
            ThreadPoolExecutor(readers, thread_name_prefix="eventpro-polls") if readers else None
        )
        self._pending: list[tuple[str, asyncio.Future[PurchaseView | None]]] = []
        self._gathering = False

    async def view(self, purchase_id: str) -> PurchaseView | None:
        """The purchase with `ahead` and its order, or None for an unknown id."""
        future: asyncio.Future[PurchaseView | None] = asyncio.get_running_loop().create_future()
        self._pending.append((purchase_id, future))
        if not self._gathering:
            self._gathering = True
            asyncio.get_running_loop().create_task(self._gather())
        return await future

    async def _gather(self) -> None:
        try:
            while self._pending:
                await self._readers.acquire()  # wait for a free reader: meanwhile, more come
                group = self._pending[: self._max_group]
                del self._pending[: self._max_group]
                if self._executor is None:
                    await self._read(group)  # on the loop: it does not wait
                else:
                    asyncio.get_running_loop().create_task(self._read(group))
        finally:
            self._gathering = False

    async def _read(self, group: list[tuple[str, asyncio.Future[PurchaseView | None]]]) -> None:
        try:
            ids = list(dict.fromkeys(purchase_id for purchase_id, _ in group))
            if self._executor is None:
                views = self._read_many(ids)
            else:
                loop = asyncio.get_running_loop()
                views = await loop.run_in_executor(self._executor, self._read_many, ids)
        except Exception as exc:
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._readers.release()
        for purchase_id, future in group:
            if not future.done():
                future.set_result(views.get(purchase_id))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
