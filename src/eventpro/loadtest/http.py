"""The HTTP client of the load generator and the benchmarks: pyreqwest on uvloop.

A load generator must not be the bottleneck it measures. On this project's 2-core machine
aiohttp spent about 160 µs of CPU per request, which the server under test needed; the
Rust client (reqwest, with its own connection pool) spends about 80 µs, task included.
Everything that sends load goes through `HttpClient`, so every measure uses the same one.
An answer that never came is recorded as a status: `TIMEOUT` or `CONNECTION_ERROR`.

Never cancel a task while it awaits a request: seen here, such a task may never finish
(one run in two hung at its end when the progress watcher was cancelled mid-request).
Loops stop at their next step instead, and every request has its timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

import uvloop
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError, RequestTimeoutError

TIMEOUT, CONNECTION_ERROR = -1, 0  # statuses of answers that never came
JSON = {"Content-Type": "application/json"}
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh uvloop event loop (a third faster than asyncio's here)."""
    return uvloop.run(main)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int  # the HTTP status, or TIMEOUT / CONNECTION_ERROR
    body: bytes = b""
    retry_after: float = 0.0  # seconds of a `Retry-After` header, 0 without one


class HttpClient:
    """Keep-alive connections to one base URL, at most `connections` at once (the others
    wait for one, up to `timeout`)."""

    def __init__(self, base_url: str, connections: int, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timedelta(seconds=timeout)
        self._client: Client = (
            ClientBuilder()
            .max_connections(connections)
            .timeout(self._timeout)
            .pool_timeout(self._timeout)
            .connect_timeout(min(self._timeout, timedelta(seconds=10)))
            .runtime_multithreaded(False)  # one Rust thread beside the event loop's
            .build()
        )

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._client.close()

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] = JSON) -> Reply:
        request = self._client.post(self.base_url + path).headers(dict(headers))
        return await _send(request.body_bytes(body).build().send())

    async def get(self, path: str) -> Reply:
        return await _send(self._client.get(self.base_url + path).build().send())

    async def lines(self, path: str, timeout: float) -> AsyncIterator[bytes]:
        """The lines of a streamed answer (Server-Sent Events) as they arrive, for at most
        `timeout` seconds; nothing more once the connection fails."""
        request = self._client.get(self.base_url + path).timeout(timedelta(seconds=timeout))
        with contextlib.suppress(PyreqwestError):
            async with request.build_streamed() as response:
                reader = response.body_reader
                pending = b""
                while (chunk := await reader.read_chunk()) is not None:
                    pending += bytes(chunk)
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        yield line.rstrip(b"\r")


async def _send(sending: Coroutine[Any, Any, Any]) -> Reply:
    try:
        response = await sending
        body = bytes(await response.bytes())
    except RequestTimeoutError:
        return Reply(TIMEOUT)
    except PyreqwestError:
        return Reply(CONNECTION_ERROR)
    return Reply(response.status, body, _seconds(response.get_header("Retry-After")))


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
