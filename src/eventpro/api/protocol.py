"""uvicorn's httptools protocol with the limits a public server needs before the app runs.

uvicorn bounds neither the size of a request's head nor the time to read it, and its
keep-alive timer starts only after a first response: a client that connects and sends
nothing, or drips its headers a byte at a time, holds a connection (a file descriptor)
for ever, and a 32 MB header is read whole into memory. Here:

- the head (request line and headers) of a request is at most `MAX_HEAD_BYTES` and
  `MAX_HEADERS` headers, else `431` and the connection closes;
- it must arrive within `EVENTPRO_HEAD_TIMEOUT` seconds (10 by default) of the connection
  (or of the request's first byte on a kept-alive connection), else the connection closes.

And two things for speed: uvicorn writes a response's head and its body to the socket in
two calls, each a system call that runs the loopback's whole TCP path. `OneWritePerTurn`
sends what one turn of the event loop wrote to a connection in one call (docs/perf.md).
And uvicorn arms a keep-alive timer after every response and cancels it on the next
request's first bytes; here one timer per connection and timeout period closes a
connection idle for `timeout_keep_alive` seconds, as the head timer does for heads.

Each refusal is counted in `REFUSED`, which `/metrics` exports.
"""

from __future__ import annotations

import asyncio
import functools
import os
import resource
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
HEAD_TIMEOUT = "EVENTPRO_HEAD_TIMEOUT"  # seconds, 10 by default (Settings.head_timeout)
LINGER = 1.0  # seconds a refused connection is drained before it closes
REFUSED: Counter[str] = Counter()  # reason -> connections refused (per process)


class _HeadTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a bounded request head, in size and in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since = 0.0  # loop time the head in progress began
        self._head_timeout = _head_timeout()
        self._discarding = False  # after a refusal: what still arrives is dropped
        self._tail = b""  # the last bytes of the head seen, to find its end across chunks
        self._idle_since: float | None = None  # loop time the last answer ended, if idle
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWritePerTurn(transport, self.loop))  # type: ignore[arg-type]
        self._head_since = self.loop.time()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        if self._discarding:
            return
        if self._in_head:
            # only the bytes up to the end of the head count: a body may share the chunk
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
            self._tail = seen[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head("head_too_large")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._header_count = True, 0, 0
        self._tail = b""
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            raise _HeadTooLarge  # the parser stops and reports it as invalid: see below
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._header_count > MAX_HEADERS:
            self._refuse_head("too_many_headers")
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._in_head = False  # the timer stays: see _head_timer_fired
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, but the connection, when idle, is closed by `_idle_timer_fired`."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # the next request has come already: answer it
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            when = self._idle_since + self.timeout_keep_alive
            self._idle_timer = self.loop.call_at(when, self._idle_timer_fired)

    def _idle_timer_fired(self) -> None:
        self._idle_timer = None
        if self._idle_since is None or self.transport.is_closing():
            return  # a request is under way: its answer arms the timer again
        when = self._idle_since + self.timeout_keep_alive
        if self.loop.time() < when:
            self._idle_timer = self.loop.call_at(when, self._idle_timer_fired)
        else:
            self.transport.close()

    def _arm_head_timer(self) -> None:
        when = self._head_since + self._head_timeout
        self._head_timer = self.loop.call_at(when, self._head_timer_fired)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timer_fired(self) -> None:
        """One timer per connection and timeout period, not one armed and cancelled per
        request: when it fires, the head in progress, if any, gets the rest of its time,
        and a connection between requests gets a new timer from its next request."""
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.loop.time() < self._head_since + self._head_timeout:
            self._arm_head_timer()  # the head began after the timer was armed
        else:
            REFUSED["head_timeout"] += 1
            self.transport.close()

    def _refuse_head(self, reason: str) -> None:
        REFUSED[reason] += 1
        self._stop_head_timer()
        body = (
            b'{"error":{"code":"request_head_too_large","message":"the request line and'
            b' headers are over %d bytes or %d headers"}}' % (MAX_HEAD_BYTES, MAX_HEADERS)
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json"
            b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        if self.transport.is_closing():
            return
        self.transport.write(head + body)
        # Close gently: closing with unread bytes would reset the connection, and the
        # client, still sending, could lose the answer. Stop writing, drop what comes,
        # and close a moment later.
        self._discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)


class OneWritePerTurn:
    """A connection's transport whose writes in one turn of the event loop go out as one.

    The first write of a turn schedules the flush with `call_soon`: it runs before the
    loop next waits for I/O, so nothing written waits on anything but the current turn.
    Whatever ends the writing (close, write_eof) flushes first; the rest is the transport's.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # pause_reading, get_extra_info, abort, …
        return getattr(self._transport, name)


@functools.cache
def _head_timeout() -> float:
    # read from the environment: uvicorn builds this class in each of its processes
    return float(os.environ.get(HEAD_TIMEOUT, "10"))


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit (each connection
    is one); return (soft, hard) as they are now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft, hard
