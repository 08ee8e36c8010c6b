"""The synchronous strategies' purchase: decided inside the HTTP call, answered 201 or 409.

Only `eventpro replay` and `serve --strategy naive|locking|conditional` use it, to measure
the designs EventPro replaces on the same load as the queue. The checks that need no
I/O are the admission's (event, pause, request rules); the sale itself is the seller's,
run on a bounded thread pool as a thread-per-request server would.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

from eventpro.domain.allocation import sale_is_open
from eventpro.domain.errors import IdempotencyMismatch, Refused
from eventpro.domain.model import Order, PurchaseRequest, Reason
from eventpro.domain.rules import resolve_request
from eventpro.ports import Clock, IdSource, SynchronousSeller
from eventpro.services.admission import AdmissionService, PurchaseInput


class SynchronousSale:
    def __init__(
        self,
        admission: AdmissionService,
        seller: SynchronousSeller,
        clock: Clock,
        ids: IdSource,
        threads: int,
    ) -> None:
        self._admission = admission
        self._seller = seller
        self._clock = clock
        self._ids = ids
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="sell")

    async def buy(self, event_id: str, body: PurchaseInput, idempotency_key: str | None) -> Order:
        """The order, or `Refused` with the reason; a retried key returns the first order."""
        event = self._admission.open_event(event_id)
        request = resolve_request(
            event, body.buyer_id, section=body.section, seats=body.seats, quantity=body.quantity
        )
        now = self._clock.now()
        if not sale_is_open(event, now):
            raise Refused(Reason.SALE_NOT_OPEN)
        purchase_id = (
            keyed_purchase_id(event_id, idempotency_key)
            if idempotency_key
            else self._ids.new("pur")
        )
        order = await asyncio.get_running_loop().run_in_executor(
            self._threads, self._seller.sell, purchase_id, event, request, now
        )
        if not _same_request(order, request):
            raise IdempotencyMismatch(
                "this Idempotency-Key was used with a different body", field="Idempotency-Key"
            )
        return order

    def pool_counts(self) -> dict[str, int]:
        return self._seller.pool_counts()

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._seller.close()


def keyed_purchase_id(event_id: str, idempotency_key: str) -> str:
    """The same key for the same event always names the same purchase: the unique
    `orders.purchase_id` then turns a retry into the first answer, never a second sale."""
    digest = hashlib.sha256(f"{event_id}\0{idempotency_key}".encode()).hexdigest()
    return f"pur_k{digest[:31]}"


def _same_request(order: Order, request: PurchaseRequest) -> bool:
    named = not request.seats or order.seats == request.seats
    return (order.buyer_id, order.section, order.quantity) == (
        request.buyer_id,
        request.section,
        request.quantity,
    ) and named
