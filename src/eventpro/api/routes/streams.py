"""Live streams (Server-Sent Events): one purchase's progress, one event's stock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from starlette.responses import StreamingResponse

from eventpro.api.deps import ContainerDep
from eventpro.api.routes.common import errors
from eventpro.api.routes.events import event_answer
from eventpro.api.routes.purchases import purchase_answer
from eventpro.services.events import view_event
from eventpro.services.wire import event_json, purchase_json

router = APIRouter(tags=["streams"])

PURCHASE_POLL = 0.25  # seconds: at most four updates a second
EVENT_POLL = 1.0
MAX_STREAM = 3600.0  # seconds: a stream closes after an hour; clients resume with Last-Event-ID
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)]


def sse(event_id: int, kind: str, data: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), orjson.dumps(data))


def _first_id(last_event_id: str | None) -> int:
    return int(last_event_id) if last_event_id and last_event_id.isdigit() else 0


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


async def _stream(
    next_body: Callable[[], Awaitable[tuple[dict[str, Any], bool]]],
    kind: str,
    interval: float,
    first_id: int,
) -> AsyncIterator[bytes]:
    """Send a body at once and whenever it changes; stop after the final one."""
    sequence, previous, deadline = first_id, None, time.monotonic() + MAX_STREAM
    while time.monotonic() < deadline:
        body, final = await next_body()
        if body != previous:
            sequence += 1
            previous = body
            yield sse(sequence, kind, body)
        if final:
            return
        await asyncio.sleep(interval)


@router.get(
    "/v1/purchases/{purchase_id}/stream",
    responses={**errors(404), 200: {"content": {"text/event-stream": {}}}},
)
async def purchase_stream(
    purchase_id: str, container: ContainerDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The purchase's JSON at once, then on every change of status or `ahead`."""
    await purchase_answer(container, purchase_id)  # 404 before the stream starts
    eta = Eta()

    async def next_body() -> tuple[dict[str, Any], bool]:
        view = await purchase_answer(container, purchase_id)
        body = purchase_json(view)
        if not view.purchase.status.is_final:
            body["eta_seconds"] = eta(view.ahead)
        return body, view.purchase.status.is_final

    stream = _stream(next_body, "purchase", PURCHASE_POLL, _first_id(last_event_id))
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get(
    "/v1/events/{event_id}/stream",
    responses={**errors(404), 200: {"content": {"text/event-stream": {}}}},
)
async def event_stream(
    event_id: str, container: ContainerDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The event's JSON at most once a second while the sale runs."""
    await event_answer(container, event_id)

    async def next_body() -> tuple[dict[str, Any], bool]:
        view = await asyncio.to_thread(
            view_event, container.store, container.queue, container.clock, event_id
        )
        assert view is not None
        settled = view.status.value == "sold_out" and view.queue_depth == 0
        return event_json(view), settled

    stream = _stream(next_body, "event", EVENT_POLL, _first_id(last_event_id))
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
