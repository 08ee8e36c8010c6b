"""The two requests of a spike as raw ASGI: the purchase POST and the buyer's poll.

Under load these two are nearly all of the traffic, and the middleware chain around a
Starlette route (error and exception middlewares, router, body limit, request counter, a
`send` wrapper for each, a `Request` object) cost more of the event loop than the
admission itself (docs/perf.md). Here each is one coroutine that reads the head once,
the body within the contract's limit, and writes one answer, keeping the contract:

- the same handlers decide the answer (`routes/purchases.py`), and the same mapping
  turns exceptions into the contract's error shape (`errors.error_for`);
- the same limits (16 KiB body, checked on Content-Length before reading and on the
  bytes as they come) and the same metrics (requests by route template and status,
  admission latency);
- the routes are FastAPI's own, by path and method: `HotRoutes` serves the routes of
  `HOT` that FastAPI documents, matched by their own regular expressions, so the
  documented API and the hot path cannot drift (tests/integration/test_hot_path.py).

`eventpro serve` goes one step further: its HTTP protocol starts the handler
(`HotRoutes.start`) and maps its failure (`HotRoutes.failed`) itself, without uvicorn's
ASGI cycle (`api/direct.py`); `serve` here answers the same requests when they come as
ASGI.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
import orjson
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from eventpro.api.errors import error_for
from eventpro.api.limits import MAX_BODY, declared_too_large, refuse_body
from eventpro.api.metrics import Metrics
from eventpro.api.routes import purchases
from eventpro.domain.model import Value
from eventpro.services.purchases import PurchaseView

JSON = (b"content-type", b"application/json")
# Our ids and paths are printable ASCII: a NUL or a control character names nothing, and
# must never reach a store (PostgreSQL refuses NUL in text). Checked before any route.
PLAIN_PATH = re.compile(r"[\x21-\x7e]{1,2000}")


class Answer(Value, frozen=True):
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, response: Response) -> Answer:
        kept = tuple((k, v) for k, v in response.raw_headers if k != b"content-length")
        return cls(response.status_code, bytes(response.body), kept)

    def fields(self) -> list[tuple[bytes, bytes]]:
        """The answer's header fields: its length, then `own_fields`."""
        return [(b"content-length", b"%d" % len(self.body)), *own_fields(self.headers)]


def own_fields(headers: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """An answer's header fields but its length: its type (JSON unless it names one) and
    its own."""
    if any(name == b"content-type" for name, _ in headers):
        return list(headers)
    return [JSON, *headers]


class RawRequest(msgspec.Struct, frozen=True):
    """What a hot handler reads: path parameters, two headers, the body, app state.
    (A Struct, as `Answer` is: a frozen dataclass cost 0.4 µs more a request.)"""

    params: dict[str, str]
    content_type: str
    idempotency_key: str | None
    body: bytes
    state: Any


async def _admit(request: RawRequest) -> Answer:
    status, body = await purchases.admit(
        request.state,
        request.params["event_id"],
        request.content_type,
        request.body,
        request.idempotency_key,
    )
    return Answer(status, orjson.dumps(body))


# a queued poll's header, by its seconds: built once, not once a poll
RETRY_AFTER = {n: ((b"retry-after", b"%d" % n),) for n in range(1, purchases.MAX_POLL_AFTER + 1)}


def _poll(request: RawRequest) -> asyncio.Future[Answer]:
    """A future, not a coroutine: `serve`'s protocol answers when it is done, without a
    task and the chain of coroutines of the other handlers (api/direct.py). The group's
    read sets it (`PollReader.submit`): no future of the view in between."""
    purchase_id = request.params["purchase_id"]
    answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def reply(view: PurchaseView | None, error: Exception | None) -> None:
        if answer.done():  # cancelled: nobody waits
            return
        try:  # never raises: the other polls of the group are answered after this one
            answer.set_result(_poll_answer(purchase_id, view, error))
        except Exception as exc:
            answer.set_exception(exc)

    request.state.polls.submit(purchase_id, reply)
    return answer


def _poll_answer(purchase_id: str, view: PurchaseView | None, error: Exception | None) -> Answer:
    if error is not None:  # the group's read failed
        raise error
    body, retry_after = purchases.poll_answer(purchase_id, view)
    extra = () if retry_after is None else RETRY_AFTER[retry_after]
    return Answer(200, orjson.dumps(body), extra)


Handler = Callable[[RawRequest], Awaitable[Answer]]
Matched = tuple[str, Handler, dict[str, str]]  # (template, handler, path parameters)
# (method, template) -> the handler that answers it; the template is FastAPI's route's
HOT: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/events/{event_id}/purchases"): _admit,
    ("GET", "/v1/purchases/{purchase_id}"): _poll,
}


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class HotRoutes:
    """`match` finds a hot route; `answer` answers it, and `serve` as ASGI."""

    def __init__(self, routes: Iterable[BaseRoute], state: Any, retry_after: int) -> None:
        self.state = state
        self.retry_after = retry_after
        self.metrics: Metrics = state.metrics
        self._routes: dict[str, list[tuple[re.Pattern[str], str, Handler]]] = {}
        for route in routes:
            if not isinstance(route, Route):
                continue
            for method in route.methods or ():
                handler = HOT.get((method, route.path))
                if handler is not None:
                    entry = (route.path_regex, route.path, handler)
                    self._routes.setdefault(method, []).append(entry)
        if self.served() != set(HOT):  # a renamed route must fail at start, not go slow
            raise RuntimeError(f"hot routes not found among the app's: {set(HOT) - self.served()}")

    def served(self) -> set[tuple[str, str]]:
        """(method, template) of every route served here."""
        return {(m, template) for m, entries in self._routes.items() for _, template, _ in entries}

    def match(self, method: str, path: str) -> Matched | None:
        """The hot route of a request's method and (decoded) path, if any."""
        for regex, template, handler in self._routes.get(method, ()):
            found = regex.match(path)
            if found is not None:
                return template, handler, found.groupdict()
        return None

    def start(
        self, matched: Matched, content_type: str, key: str | None, body: bytes
    ) -> Awaitable[Answer]:
        """The handler's answer to come: a coroutine, or a future (a poll's)."""
        _, handler, params = matched
        return handler(RawRequest(params, content_type, key, body, self.state))

    def failed(self, exc: Exception) -> Answer:
        """The one place a hot answer's failure becomes its error."""
        return Answer.of(error_for(exc, self.retry_after))

    async def answer(
        self, matched: Matched, content_type: str, key: str | None, body: bytes | None
    ) -> Answer:
        """The answer to a hot request; `body` is None when it is over the limit."""
        if body is None:
            return refusal()
        try:
            return await self.start(matched, content_type, key, body)
        except Exception as exc:
            return self.failed(exc)

    async def serve(self, scope: Scope, receive: Receive, send: Send, matched: Matched) -> None:
        """Answer a hot request that came as ASGI (a server other than `eventpro serve`'s,
        or a request its protocol leaves to ASGI: see `api/direct.py`)."""
        content_type, length, key = head_of(scope["headers"])
        try:
            body = None if declared_too_large(length, MAX_BODY) else await _body(receive)
        except _TooLarge:
            body = None
        except _Disconnected:
            return  # nobody to answer
        answer = await self.answer(matched, content_type, key, body)
        start = {"type": "http.response.start", "status": answer.status, "headers": answer.fields()}
        await send(start)
        await send({"type": "http.response.body", "body": answer.body})
        self.metrics.count_request(matched[0], answer.status)


def refusal() -> Answer:
    """The answer to a body over the limit."""
    return Answer.of(refuse_body(MAX_BODY))


def head_of(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, bytes | None, str | None]:
    """Content-Type, Content-Length and Idempotency-Key, in one pass over the head."""
    content_type, length, key = "", None, None
    for name, value in headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            length = value
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
    return content_type, length, key


async def _body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
