"""Live streams (Server-Sent Events): one purchase's progress, one event's stock.

The streams read nothing themselves: each subscribes to its event's watcher
(`api/watch.py`), which reads the store once per tick for every stream of the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from eventpro.api.deps import ContainerDep
from eventpro.api.errors import ApiError
from eventpro.api.hub import Hub
from eventpro.api.metrics import Metrics
from eventpro.api.routes.common import errors
from eventpro.api.routes.events import event_answer
from eventpro.api.routes.purchases import purchase_answer
from eventpro.api.watch import Subscriber, purchase_body
from eventpro.bootstrap import Container

router = APIRouter(tags=["streams"])

MAX_STREAM = 3600.0  # seconds: a stream closes after an hour; clients resume with Last-Event-ID
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEP_ALIVE = b": keep-alive\n\n"
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)]


def sse(event_id: int, kind: str, data: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), orjson.dumps(data))


def _first_id(last_event_id: str | None) -> int:
    return int(last_event_id) if last_event_id and last_event_id.isdigit() else 0


class EventStream(StreamingResponse):
    """An SSE answer that gives its slot back however it ends: finished, or the client left.

    Served as raw ASGI, not by `StreamingResponse.__call__`, which under uvicorn's ASGI
    2.3 runs each stream in an anyio task group and cancels its scope at the end: 14 %
    more memory with 10,000 streams open, and final events that reached the median buyer
    0.4 s later (docs/perf.md). Here one plain task per stream waits for the client to
    leave, and ends the stream through its subscriber (uvicorn drops what is sent after
    a disconnect without a word)."""

    def __init__(
        self, body: AsyncIterator[bytes], release: Callable[[], None], subscriber: Subscriber
    ) -> None:
        super().__init__(body, media_type="text/event-stream", headers=SSE_HEADERS)
        self._release = release
        self._subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_until_gone(receive, self._subscriber))
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            self._release()


async def _until_gone(receive: Receive, subscriber: Subscriber) -> None:
    """Return when the client has left (or the answer is complete), ending the stream."""
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.close()


async def _events(
    subscriber: Subscriber,
    kind: str,
    first: tuple[dict[str, Any], bool],
    first_id: int,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    """Send the first body, then every newer one the watcher offers, a heartbeat comment
    when nothing was sent for `heartbeat` seconds; stop after a final body."""
    sequence, previous, deadline = first_id, None, time.monotonic() + MAX_STREAM
    body: dict[str, Any] | None
    body, final = first
    while True:
        if body is not None and body != previous:
            sequence += 1
            previous = body
            yield sse(sequence, kind, body)
        if final or time.monotonic() > deadline:
            return
        try:
            async with asyncio.timeout(heartbeat):  # no task per wait, unlike wait_for
                await subscriber.changed.wait()
        except TimeoutError:
            yield KEEP_ALIVE
            continue
        if subscriber.closed:
            return
        body, final = subscriber.take()


def _open(
    request: Request,
    event_id: str,
    subscriber: Subscriber,
    kind: str,
    first: tuple[dict[str, Any], bool],
    last_event_id: str | None,
) -> EventStream:
    hub: Hub = request.app.state.hub
    client = request.client.host if request.client else "unknown"
    hub.subscribe(client, event_id, subscriber)
    heartbeat: float = request.app.state.container.settings.stream_heartbeat
    body = _events(subscriber, kind, first, _first_id(last_event_id), heartbeat)
    return EventStream(body, lambda: hub.unsubscribe(client, event_id, subscriber), subscriber)


def _admit_stream(request: Request) -> None:
    """Refuse a stream over this process's or this client's bound: 429 + Retry-After."""
    hub: Hub = request.app.state.hub
    client = request.client.host if request.client else "unknown"
    reason = hub.refusal(client)
    if reason is not None:
        metrics: Metrics = request.app.state.metrics
        metrics.streams_refused.inc()
        retry_after = str(request.app.state.container.settings.retry_after)
        raise ApiError(429, "too_many_streams", reason, headers={"Retry-After": retry_after})


STREAM_RESPONSES = {**errors(404, 429), 200: {"content": {"text/event-stream": {}}}}


@router.get("/v1/purchases/{purchase_id}/stream", responses=STREAM_RESPONSES)
async def purchase_stream(
    purchase_id: str, request: Request, container: ContainerDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The purchase's JSON at once, then on every change of status or `ahead`."""
    return await _purchase_stream(purchase_id, request, container, last_event_id)


async def fast_purchase_stream(request: Request) -> StreamingResponse:
    """`purchase_stream` as a bare Starlette route (see `app.HotPath`): every buyer in line
    may hold one open, and FastAPI's middleware stack cost each stream memory and time."""
    last_event_id = request.headers.get("last-event-id")
    if last_event_id is not None and len(last_event_id) > 20:
        last_event_id = None
    purchase_id = request.path_params["purchase_id"]
    return await _purchase_stream(purchase_id, request, request.app.state.container, last_event_id)


async def _purchase_stream(
    purchase_id: str, request: Request, container: Container, last_event_id: str | None
) -> StreamingResponse:
    _admit_stream(request)
    view = await purchase_answer(container, purchase_id)  # 404 before the stream starts
    subscriber = Subscriber(purchase_id=purchase_id)
    first = purchase_body(view)
    return _open(request, view.purchase.event_id, subscriber, "purchase", first, last_event_id)


@router.get("/v1/events/{event_id}/stream", responses=STREAM_RESPONSES)
async def event_stream(
    event_id: str, request: Request, container: ContainerDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The event's JSON at most once a second while the sale runs."""
    _admit_stream(request)
    body = await event_answer(container, event_id)
    queue: Any = body["queue"]
    settled = body["status"] == "sold_out" and queue["depth"] == 0
    return _open(request, event_id, Subscriber(), "event", (body, settled), last_event_id)
