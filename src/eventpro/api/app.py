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
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventpro import __version__
from eventpro.api import errors, openapi
from eventpro.api.errors import error_response
from eventpro.api.hot import PLAIN_PATH, HotRoutes
from eventpro.api.hub import Hub
from eventpro.api.limits import BodyLimit
from eventpro.api.metrics import Metrics
from eventpro.api.routes import admin, dashboard, events, health, pages, purchases, streams
from eventpro.api.session import Sessions
from eventpro.bootstrap import Container
from eventpro.config import Settings
from eventpro.services.events import EventViews
from eventpro.services.polls import GroupReads, PollReader

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
        reads = GroupReads(container.store, container.queue)
        app.state.polls = PollReader(reads)
        restore = drain_on_exit(hub)
        try:
            async with background() if background else contextlib.nullcontext():
                yield
        finally:
            await reads.close()
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
    openapi.install(app)
    app.state.container = container
    app.state.metrics = metrics
    app.state.admin_token = _admin_token(settings)
    app.state.views = EventViews(
        container.store, container.queue, container.clock, on_view=metrics.on_view
    )
    app.state.sessions = Sessions(app.state.admin_token)
    app.state.hub = hub = Hub(container, settings.max_streams, settings.max_streams_per_client)
    metrics.streams_open.set_function(lambda: hub.open)
    for module in (events, purchases, streams, admin, health, pages, dashboard):
        app.include_router(module.router)
    app.mount("/static", pages.static_files(), name="static")
    # The buyers' stream, long-lived, as a bare Starlette app beside FastAPI's.
    stream = NamedRoute(PURCHASE_STREAM, streams.fast_purchase_stream, methods=["GET"])
    buyers = Starlette(routes=[stream])
    buyers.state = app.state  # the same hub, metrics and token
    for served in (app, buyers):
        errors.install(served, settings.retry_after)
        served.add_middleware(BodyLimit, admin_token=app.state.admin_token)
        served.add_middleware(CountRequests, metrics=metrics)
    hot = HotRoutes(openapi.api_routes(app.routes), app.state, settings.retry_after)
    return HotPath(app, hot, (stream.path_regex, buyers))


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


PURCHASE_STREAM = "/v1/purchases/{purchase_id}/stream"


def _admin_token(settings: Settings) -> bytes:
    """The admin token, or b"" when it is empty, a placeholder or too short: then every
    admin endpoint refuses (fail closed), whoever built the app."""
    try:
        return settings.require_admin_token().encode()
    except ValueError:
        log.warning("no usable admin token: every admin endpoint answers 401")
        return b""


class HotPath:
    """Sends the two requests of a spike, `POST /v1/events/{id}/purchases` and the buyers'
    polls `GET /v1/purchases/{id}`, to their raw ASGI handlers (`api/hot.py`), the buyers'
    stream to a bare Starlette app, and every other request, the lifespan included, to
    FastAPI, whose routes document the first two in `/openapi.json`.
    """

    def __init__(
        self, api: FastAPI, hot: HotRoutes, stream: tuple[re.Pattern[str], ASGIApp]
    ) -> None:
        self.api, self.hot = api, hot
        self.stream_path, self.stream = stream
        self.state = api.state
        self._routes = [
            (route.path_regex, frozenset(route.methods or ()))
            for route in openapi.api_routes(api.routes)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        if not PLAIN_PATH.fullmatch(scope["path"]):
            await error_response(404, "not_found", "no such resource")(scope, receive, send)
            return
        matched = self.hot.match(scope["method"], scope["path"])
        if matched is not None:
            await self.hot.serve(scope, receive, send, matched)
            return
        if scope["method"] == "GET" and self.stream_path.match(scope["path"]):
            await self.stream(scope, receive, send)
            return
        allowed = self._allowed(scope["path"])
        if allowed and scope["method"] not in allowed:
            await self._not_allowed(scope, allowed)(scope, receive, send)
            return
        await self.api(scope, receive, send)

    def _allowed(self, path: str) -> frozenset[str]:
        """Every method some route serves at `path` (a path may have several routes)."""
        return frozenset().union(*(m for regex, m in self._routes if regex.match(path)))

    @staticmethod
    def _not_allowed(scope: Scope, allowed: frozenset[str]) -> Response:
        allow = ", ".join(sorted(allowed | {"OPTIONS"}))
        if scope["method"] == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        message = f"{scope['method']} is not allowed here; allowed: {allow}"
        return error_response(405, "method_not_allowed", message, headers={"Allow": allow})


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
