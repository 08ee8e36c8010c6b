"""Admission: answer every buyer at once, and write admissions in groups.

The API calls `AdmissionService.submit` for each purchase request. The rules that need
no I/O run here (validation, sale open, pause, line bound); what must be atomic
(idempotency, per-buyer count, sold-out flag, position, durable append) is the queue
port's `admit`, called once per group of concurrent requests: while one group is being
written, the next one gathers (group commit), so a spike costs one transaction per
group rather than one per request.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import orjson

from eventpro.domain.allocation import sale_is_open
from eventpro.domain.errors import (
    AdmissionPaused,
    EventNotFound,
    IdempotencyInFlight,
    IdempotencyMismatch,
    LineFull,
)
from eventpro.domain.model import Event, Reason, Value
from eventpro.domain.rules import resolve_request
from eventpro.ports import Admission, Admitted, Clock, IdSource, InventoryStore, PurchaseQueue
from eventpro.services.cache import TtlCache


class PurchaseInput(Value, frozen=True):
    buyer_id: str
    section: str | None
    seats: tuple[str, ...] | None
    quantity: int | None

    def fingerprint(self, event_id: str) -> str:
        """A hash of the request body, to tell a retry from a reused key."""
        body = [event_id, self.buyer_id, self.section, self.seats, self.quantity]
        return hashlib.sha256(orjson.dumps(body)).hexdigest()


class GroupCommitter:
    """Gathers concurrent admissions and writes each gathered group with one `admit` call."""

    def __init__(self, queue: PurchaseQueue, max_group: int = 1000) -> None:
        self._queue = queue
        self._max_group = max_group
        # One writer thread: admissions are serialised anyway, and arrival order is kept.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="admit")
        self._pending: list[tuple[Admission, asyncio.Future[Admitted]]] = []
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None

    async def admit(self, admission: Admission) -> Admitted:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admitted] = loop.create_future()
        self._pending.append((admission, future))
        if not self._flushing:
            self._flushing = True
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group = self._pending[: self._max_group]
                del self._pending[: self._max_group]
                await self._write(loop, group)
        finally:
            self._flushing = False

    async def _write(
        self,
        loop: asyncio.AbstractEventLoop,
        group: Sequence[tuple[Admission, asyncio.Future[Admitted]]],
    ) -> None:
        admissions = [a for a, _ in group]
        try:
            results = await loop.run_in_executor(self._executor, self._queue.admit, admissions)
        except Exception as exc:
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class AdmissionService:
    """Validates, applies the fast rules and hands requests to the group committer."""

    def __init__(
        self,
        store: InventoryStore,
        queue: PurchaseQueue,
        clock: Clock,
        ids: IdSource,
        *,
        max_line: int,
        retry_after: int = 1,
        cache_ttl: float = 0.5,
    ) -> None:
        self._store = store
        self._queue = queue
        self._clock = clock
        self._ids = ids
        self._max_line = max_line
        self._retry_after = retry_after
        self._events: TtlCache[str, Event | None] = TtlCache(cache_ttl)
        self._depths: TtlCache[str, int] = TtlCache(cache_ttl)
        self._in_flight: dict[tuple[str, str], asyncio.Future[Admitted]] = {}
        self.committer = GroupCommitter(queue)

    async def event(self, event_id: str) -> Event | None:
        """The event's definition, cached briefly: it changes only by pause and resume.
        Read in a thread, so the event loop never waits for the store."""
        return await self._events.aget(event_id, self._load_event)

    def _load_event(self, event_id: str) -> Event | None:
        inventory = self._store.get_inventory(event_id)
        return inventory.event if inventory else None

    async def open_event(self, event_id: str) -> Event:
        """The event, if it exists and takes purchases now (else a `DomainError`)."""
        event = await self.event(event_id)
        if event is None:
            raise EventNotFound(f"no event {event_id!r}")
        if event.paused:
            raise AdmissionPaused(f"sales of {event_id} are paused", retry_after=self._retry_after)
        return event

    def forget_event(self, event_id: str) -> None:
        """Read the event and its line's depth afresh next time (after a pause, say)."""
        self._events.forget(event_id)
        self._depths.forget(event_id)

    async def submit(
        self, event_id: str, body: PurchaseInput, idempotency_key: str | None
    ) -> Admitted:
        """Admit one purchase request; raise a `DomainError` if it can't be."""
        event = await self.open_event(event_id)
        request = resolve_request(
            event, body.buyer_id, section=body.section, seats=body.seats, quantity=body.quantity
        )
        if await self._depths.aget(event_id, self._queue.depth) >= self._max_line:
            raise LineFull(
                f"the line for {event_id} is full; try again", retry_after=self._retry_after
            )
        now = self._clock.now()
        admission = Admission(
            purchase_id=self._ids.new("pur"),
            event_id=event_id,
            request=request,
            per_buyer_limit=event.per_buyer_limit,
            received_at=now,
            idempotency_key=idempotency_key,
            request_hash=body.fingerprint(event_id) if idempotency_key else None,
            rejected_for=None if sale_is_open(event, now) else Reason.SALE_NOT_OPEN,
        )
        if idempotency_key is None:
            return await self.committer.admit(admission)
        return await self._submit_once(admission, idempotency_key)

    async def _submit_once(self, admission: Admission, key: str) -> Admitted:
        """Admit a keyed request; requests with the same key at once wait for the first.

        If the first turns out to be a replay of a key answered before, every follower
        gets that same first answer; if it is the key's first request, still being
        written when they arrived, they get `IdempotencyInFlight` (409).
        """
        scoped = (admission.event_id, key)
        leader = self._in_flight.get(scoped)
        if leader is not None:
            first = await asyncio.shield(leader)
            if not first.replayed and not first.key_mismatch:
                raise IdempotencyInFlight(
                    "a request with this Idempotency-Key is still in progress",
                    field="Idempotency-Key",
                )
            return self._checked(await self.committer.admit(admission))
        future = asyncio.ensure_future(self.committer.admit(admission))
        self._in_flight[scoped] = future
        try:
            admitted = await asyncio.shield(future)
        finally:
            if self._in_flight.get(scoped) is future:
                del self._in_flight[scoped]
        return self._checked(admitted)

    @staticmethod
    def _checked(admitted: Admitted) -> Admitted:
        if admitted.key_mismatch:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used with a different body", field="Idempotency-Key"
            )
        return admitted

    def close(self) -> None:
        self.committer.close()
