"""`create_app`: the FastAPI application around a wired container."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventpro import __version__
from eventpro.api import errors
from eventpro.api.hub import Hub
from eventpro.api.limits import BodyLimit
from eventpro.api.metrics import Metrics
from eventpro.api.routes import admin, dashboard, events, health, pages, purchases, streams
from eventpro.api.session import Sessions
from eventpro.bootstrap import Container

log = logging.getLogger(__name__)


def create_app(
    container: Container,
    metrics: Metrics | None = None,
    background: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> HotPath:
    """The API around a wired container. `background` runs beside it for the app's
    lifetime (`eventpro serve` passes its in-process worker loops this way)."""
    settings = container.settings
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.admission = admission = container.admission()
        app.state.synchronous = synchronous = container.synchronous_sale(admission)
        if synchronous is not None:
            metrics.watch_pool(synchronous.pool_counts)
        log.info("serving with strategy %s", settings.strategy)
        restore = drain_on_exit(hub)
        try:
            async with background() if background else contextlib.nullcontext():
                yield
        finally:
            restore()
            await hub.close()
            if synchronous is not None:
                synchronous.close()
            admission.close()
            container.close()

    app = FastAPI(
        title="EventPro",
        version=__version__,
        description="Flash-sale ticketing: admission into a durable line, batched decisions.",
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.metrics = metrics
    app.state.admin_token = settings.admin_token.get_secret_value().encode()
    app.state.sessions = Sessions(app.state.admin_token)
    app.state.hub = hub = Hub(container, settings.max_streams, settings.max_streams_per_client)
    metrics.streams_open.set_function(lambda: hub.open)
    for module in (events, purchases, streams, admin, health, pages, dashboard):
        app.include_router(module.router)
    app.mount("/static", pages.static_files(), name="static")
    # The hot path, as a bare Starlette app beside FastAPI's (see `purchases.fast_purchase`).
    hot = Starlette(
        routes=[
            NamedRoute(PURCHASES, purchases.fast_purchase, methods=["POST"]),
            NamedRoute(PURCHASE, purchases.fast_get_purchase, methods=["GET"]),
            NamedRoute(PURCHASE_STREAM, streams.fast_purchase_stream, methods=["GET"]),
        ]
    )
    hot.state = app.state  # the same admission service, metrics and token
    for served in (app, hot):
        errors.install(served, settings.retry_after)
        served.add_middleware(BodyLimit)
        served.add_middleware(CountRequests, metrics=metrics)
    return HotPath(app, hot)


def drain_on_exit(hub: Hub) -> Callable[[], None]:
    """End the live streams as soon as SIGTERM or SIGINT arrives, then let the server's own
    handler run: its graceful shutdown waits for open connections, and a stream would hold
    it for the whole timeout. Returns what puts the handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.drain)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, chained in previous.items():
            signal.signal(sig, chained)

    return restore


PURCHASES = "/v1/events/{event_id}/purchases"
PURCHASE = "/v1/purchases/{purchase_id}"
PURCHASE_STREAM = "/v1/purchases/{purchase_id}/stream"
HOT_PATHS = {  # method -> the paths HotPath serves from the bare app
    "POST": re.compile(r"/v1/events/[^/]+/purchases"),
    "GET": re.compile(r"/v1/purchases/[^/]+(/stream)?"),
}


class HotPath:
    """Sends the two requests of a spike, `POST /v1/events/{id}/purchases` and the buyers'
    polls `GET /v1/purchases/{id}`, straight to their bare Starlette app, and every other
    request, the lifespan included, to FastAPI.

    FastAPI's own middleware stack (telemetry, a second body limit, an exit stack per
    request) cost more than half of the time of these two; the routes FastAPI keeps for
    them document them in `/openapi.json`.
    """

    def __init__(self, api: FastAPI, hot: ASGIApp) -> None:
        self.api, self.hot = api, hot
        self.state = api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = HOT_PATHS.get(scope["method"]) if scope["type"] == "http" else None
        if path is not None and path.fullmatch(scope["path"]):
            await self.hot(scope, receive, send)
        else:
            await self.api(scope, receive, send)


class NamedRoute(Route):
    """A Starlette route that records itself in the scope, as FastAPI's routes do.

    FastAPI's router leaves `scope["route"]` unset for plain Starlette routes, and
    `CountRequests` labels requests by it.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child = {**child, "route": self}
        return match, child


class CountRequests:
    """A pure ASGI middleware counting answers by route template and status.

    The router records the matched route in the scope, so no second matching is needed.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.count_request(template, status)
