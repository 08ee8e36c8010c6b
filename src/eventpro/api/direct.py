"""The two hot requests answered by the HTTP protocol itself, without uvicorn's ASGI cycle.

For each request uvicorn builds a `RequestResponseCycle` (an `asyncio.Event`, a dozen
fields), a task around the app, a `receive` and a `send` with a message dict each, and
checks every response header against two regular expressions. Under wrk, a raw ASGI app
answering a constant costs 19.5 µs of CPU a request on our protocol; the same answer
written by the protocol from a task of its own costs 8 µs (docs/perf.md). The purchase
POST and the buyer's poll are nearly all of a spike's requests, so `DirectProtocol`
answers them itself, with the same `HotRoutes` the ASGI app uses (`api/hot.py`): the same
handlers, the same error mapping, the same body limit and the same metrics.

Everything else goes to ASGI as before, and so does a hot request that needs what only
uvicorn's cycle does: one pipelined behind an answer still being written, one that
expects `100 Continue`, an upgrade, a path with escapes, or one past the concurrency
limit (uvicorn answers it 503).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from eventpro.api.hot import PLAIN_PATH, Answer, HotRoutes, Matched, head_of, own_fields, refusal
from eventpro.api.limits import MAX_BODY, declared_too_large
from eventpro.api.protocol import GuardedHttpToolsProtocol

log = logging.getLogger(__name__)


class DirectProtocol(GuardedHttpToolsProtocol):
    """The guarded protocol, answering the hot routes of the app it serves directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hot = hot_routes_of(self.app)
        self.exchange: DirectExchange | None = None  # the request in progress, if direct

    def on_headers_complete(self) -> None:
        self.exchange = exchange = self._direct_exchange()
        if exchange is None:
            super().on_headers_complete()
            return
        self._in_head = False
        self.cycle = exchange  # type: ignore[assignment]  # uvicorn reads it as its cycle

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.take(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.exchange is not None:
            self.exchange.complete()
        else:
            super().on_message_complete()

    def _direct_exchange(self) -> DirectExchange | None:
        if (
            self.hot is None
            or self.expect_100_continue
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.parser.should_upgrade()
            or self._over_concurrency_limit()
        ):
            return None
        path, _, _ = self.url.partition(b"?")
        if not path.startswith(b"/") or b"%" in path or b"#" in self.url or not path.isascii():
            return None  # uvicorn's URL parsing decides those
        text = path.decode("ascii")
        if not PLAIN_PATH.fullmatch(text):
            return None
        matched = self.hot.match(self.parser.get_method().decode("ascii"), text)
        if matched is None:
            return None
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        return DirectExchange(self, self.hot, matched, keep_alive)

    def _over_concurrency_limit(self) -> bool:
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)


class _NoWaiter:
    """What uvicorn's protocol sets when the connection is lost: nothing waits on it."""

    def set(self) -> None:
        pass


class DirectExchange:
    """One hot request answered by its connection's protocol.

    It stands where uvicorn keeps its cycle (`protocol.cycle`), with the fields uvicorn's
    protocol reads there: `response_complete` (pipelining, shutdown), `disconnected` and
    `message_event` (a lost connection), `keep_alive` (a graceful shutdown clears it).
    """

    __slots__ = (
        "_body",
        "_content_type",
        "_hot",
        "_key",
        "_matched",
        "_protocol",
        "_size",
        "_started",
        "disconnected",
        "keep_alive",
        "response_complete",
    )
    message_event = _NoWaiter()

    def __init__(
        self, protocol: DirectProtocol, hot: HotRoutes, matched: Matched, keep_alive: bool
    ) -> None:
        self._protocol, self._hot, self._matched = protocol, hot, matched
        self.keep_alive = keep_alive
        self.response_complete = self.disconnected = self._started = False
        self._content_type, length, self._key = head_of(protocol.headers)
        self._body: list[bytes] = []
        self._size = 0
        if declared_too_large(length, MAX_BODY):
            self._start(None)  # refused before a byte of the body: the parser drops it

    def take(self, chunk: bytes) -> None:
        if self._started:
            return
        self._size += len(chunk)
        if self._size > MAX_BODY:
            self._start(None)
        else:
            self._body.append(chunk)

    def complete(self) -> None:
        if not self._started:
            body = self._body
            self._start(body[0] if len(body) == 1 else b"".join(body))

    def _start(self, body: bytes | None) -> None:
        self._started = True
        if body is None:
            self._finish(refusal())
            return
        pending = self._hot.start(self._matched, self._content_type, self._key, body)
        if isinstance(pending, asyncio.Future):  # a poll's: no task to wait for it
            pending.add_done_callback(self._done)
            return
        tasks = self._protocol.tasks  # the server waits for them on a graceful shutdown
        task = self._protocol.loop.create_task(self._answer(pending))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _answer(self, pending: Awaitable[Answer]) -> None:
        try:
            answer = await pending
        except Exception as exc:
            answer = self._hot.failed(exc)
        self._finish(answer)

    def _done(self, pending: asyncio.Future[Answer]) -> None:
        try:
            answer = pending.result()
        except Exception as exc:
            answer = self._hot.failed(exc)
        self._finish(answer)

    def _finish(self, answer: Answer) -> None:
        self._hot.metrics.count_request(self._matched[0], answer.status)
        try:
            self._write(answer)
        except Exception:  # a bug: the cycle would log it and close the connection too
            log.exception("a hot request's answer failed")
            self._protocol.transport.close()

    def _write(self, answer: Answer) -> None:
        protocol = self._protocol
        if self.disconnected:
            return
        if protocol.flow.write_paused:  # the client reads slowly: wait until it has room
            protocol.loop.create_task(self._write_after_drain(answer))
            return
        protocol.transport.write(self._message(answer))
        self.response_complete = True
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()

    async def _write_after_drain(self, answer: Answer) -> None:
        await self._protocol.flow.drain()
        self._write(answer)

    def _message(self, answer: Answer) -> bytes:
        """The answer on the wire: one write (see `api/protocol.py`)."""
        return b"".join(
            (
                STATUS_LINE[answer.status],
                _defaults(self._protocol.server_state.default_headers),
                _fields(answer.headers, self.keep_alive),
                b"content-length: %d\r\n\r\n" % len(answer.body),
                answer.body,
            )
        )


@functools.lru_cache(maxsize=256)
def _fields(headers: tuple[tuple[bytes, bytes], ...], keep_alive: bool) -> bytes:
    """An answer's header fields but its length, and the connection's, as bytes. Answers
    carry a handful of distinct ones (a poll's `Retry-After` by its seconds, an error's), so
    each is joined once, not once an answer: 1.1 µs of the 1.45 the head took."""
    joined = b"".join(name + b": " + value + b"\r\n" for name, value in own_fields(headers))
    return joined if keep_alive else joined + b"connection: close\r\n"


_default_head: tuple[object, bytes] = (None, b"")


def _defaults(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default header fields (`date`, `server`) as bytes: the server replaces
    the list once a second, so it is joined once a second, not once a request."""
    global _default_head
    source, joined = _default_head
    if source is not headers:
        joined = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        _default_head = (headers, joined)
    return joined


def hot_routes_of(app: Any) -> HotRoutes | None:
    """The `HotRoutes` of the app a server runs, through the middlewares uvicorn wraps
    it in (each keeps the app it wraps as `.app`); None when it has none."""
    while app is not None:
        hot = getattr(app, "hot", None)
        if isinstance(hot, HotRoutes):
            return hot
        app = getattr(app, "app", None)
    return None
