"""Purchases: the buyer's POST (the hot path) and GET, orders, admin listings."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from eventpro.api.body import documented, parse_json
from eventpro.api.deps import Admin, ContainerDep, Cursor, Limit
from eventpro.api.errors import ApiError
from eventpro.api.metrics import Metrics
from eventpro.api.routes.common import errors, json_response, not_found, page_json, paged
from eventpro.api.schemas import OrderOut, OrderPage, PurchaseAccepted, PurchaseOut, PurchasePage
from eventpro.domain.errors import Refused
from eventpro.domain.model import PurchaseStatus
from eventpro.services.admission import PurchaseInput
from eventpro.services.polls import PollReader
from eventpro.services.purchases import PurchaseView, view_purchase
from eventpro.services.selling import SynchronousSale
from eventpro.services.wire import (
    PurchaseIn,
    accepted_json,
    listed_purchase_json,
    order_json,
    order_summary_json,
    purchase_json,
)

router = APIRouter(tags=["purchases"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1-128 printable ASCII; a retry with the same key and body never buys twice",
    ),
]


def _check_key(key: str | None) -> None:
    if key is not None and not (1 <= len(key) <= 128 and key.isascii() and key.isprintable()):
        raise ApiError(
            422,
            "invalid_idempotency_key",
            "Idempotency-Key is 1-128 printable ASCII",
            "Idempotency-Key",
        )


@router.post(
    "/v1/events/{event_id}/purchases",
    status_code=202,
    response_model=PurchaseAccepted,
    responses=errors(400, 404, 409, 413, 422, 429, 503),
    openapi_extra=documented(PurchaseIn),
)
async def purchase(
    event_id: str, request: Request, idempotency_key: IdempotencyKey = None
) -> Response:
    """Ask for tickets: answered at once with a place in line, decided soon after.

    Served by the raw hot path (`api/hot.py`) in the app; this route documents it."""
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    status, body = await admit(request.app.state, event_id, content_type, raw, idempotency_key)
    return json_response(body, status)


async def admit(
    state: Any, event_id: str, content_type: str, raw: bytes, idempotency_key: str | None
) -> tuple[int, dict[str, Any]]:
    """The answer to a purchase POST: its status and JSON body."""
    started = time.perf_counter()
    _check_key(idempotency_key)
    body = parse_json(content_type, raw, PurchaseIn)
    request_input = PurchaseInput(
        buyer_id=body.buyer_id,
        section=body.section,
        seats=tuple(body.seats) if body.seats is not None else None,
        quantity=body.quantity,
    )
    if state.synchronous is not None:  # `serve --strategy naive|locking|conditional`
        return await sell_now(state, event_id, request_input, idempotency_key, started)
    admitted = await state.admission.submit(event_id, request_input, idempotency_key)
    metrics: Metrics = state.metrics
    metrics.count_admission(admitted.purchase.status.value, time.perf_counter() - started)
    return 202, accepted_json(admitted.purchase)


async def sell_now(
    state: Any,
    event_id: str,
    request_input: PurchaseInput,
    idempotency_key: str | None,
    started: float,
) -> tuple[int, dict[str, Any]]:
    """A synchronous strategy: `201` with the order, or `409` with the reason, at once."""
    sale: SynchronousSale = state.synchronous
    metrics: Metrics = state.metrics
    try:
        order = await sale.buy(event_id, request_input, idempotency_key)
    except Refused as refused:
        metrics.count_admission(PurchaseStatus.REJECTED.value, time.perf_counter() - started)
        raise ApiError(409, refused.code, refused.message) from None
    metrics.count_admission(PurchaseStatus.CONFIRMED.value, time.perf_counter() - started)
    body = {
        "purchase_id": order.purchase_id,
        "event_id": order.event_id,
        "buyer_id": order.buyer_id,
        "status": PurchaseStatus.CONFIRMED.value,
        "position": None,
        "ahead": 0,
        "reason": None,
        "order": order_summary_json(order),
    }
    return 201, body


async def purchase_answer(container: ContainerDep, purchase_id: str) -> PurchaseView:
    view = await run_in_threadpool(view_purchase, container.store, container.queue, purchase_id)
    if view is None:
        raise not_found("purchase", purchase_id)
    return view


@router.get("/v1/purchases/{purchase_id}", response_model=PurchaseOut, responses=errors(404))
async def get_purchase(purchase_id: str, request: Request) -> Response:
    """Where a purchase stands: queued (with `ahead`), confirmed, rejected or failed.

    A queued answer says in `Retry-After` when asking again is worth it, so that tens of
    thousands of waiting buyers polling do not crowd out the sale they wait for. Polls of
    one moment are read together (`services/polls.py`). Served by the raw hot path
    (`api/hot.py`) in the app; this route documents it.
    """
    polls: PollReader = request.app.state.polls
    body, retry_after = poll_answer(purchase_id, await polls.view(purchase_id))
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return json_response(body, headers=headers)


def poll_answer(purchase_id: str, view: PurchaseView | None) -> tuple[dict[str, Any], int | None]:
    """A purchase's JSON, and the seconds of its `Retry-After` while it is not decided."""
    if view is None:
        raise not_found("purchase", purchase_id)
    retry_after = None if view.purchase.status.is_final else poll_after(view.ahead)
    return purchase_json(view), retry_after


POLL_RATE = 2_000  # decisions per second assumed when pacing polls: a low, safe estimate
MAX_POLL_AFTER = 10  # seconds: never tell a buyer to wait longer than this


def poll_after(ahead: int) -> int:
    """Seconds before a queued purchase's next poll: 1, plus one per POLL_RATE ahead."""
    return min(MAX_POLL_AFTER, 1 + ahead // POLL_RATE)


@router.get("/v1/orders/{order_id}", response_model=OrderOut, responses=errors(404))
async def get_order(order_id: str, container: ContainerDep) -> Response:
    """An order produced by a confirmed purchase."""
    order = await run_in_threadpool(container.store.get_order, order_id)
    if order is None:
        raise not_found("order", order_id)
    return json_response(order_json(order))


@router.get(
    "/v1/events/{event_id}/orders",
    response_model=OrderPage,
    dependencies=[Admin],
    responses=errors(401, 404, 422),
)
async def list_orders(
    event_id: str, container: ContainerDep, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    """Every order of the event, in allocation order (admin)."""
    await _require_event(container, event_id)
    page = await run_in_threadpool(
        paged, lambda: container.store.list_orders(event_id, limit, cursor)
    )
    return json_response(page_json(page, order_json))


@router.get(
    "/v1/events/{event_id}/purchases",
    response_model=PurchasePage,
    dependencies=[Admin],
    responses=errors(401, 404, 422),
)
async def list_purchases(
    event_id: str,
    container: ContainerDep,
    status: Annotated[PurchaseStatus | None, Query()] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Every purchase request of the event, by position (admin)."""
    await _require_event(container, event_id)
    page = await run_in_threadpool(
        paged, lambda: container.queue.list_purchases(event_id, status, limit, cursor)
    )
    return json_response(page_json(page, listed_purchase_json))


async def _require_event(container: ContainerDep, event_id: str) -> None:
    if await run_in_threadpool(container.store.get_inventory, event_id) is None:
        raise not_found("event", event_id)
