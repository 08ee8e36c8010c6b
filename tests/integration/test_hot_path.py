"""The raw hot path (`api/hot.py`) and the FastAPI routes that document it answer alike.

`create_app` serves the purchase POST and the poll from raw ASGI handlers; FastAPI keeps
the same routes for `/openapi.json`. Every request below is sent both ways, to the app and
to its FastAPI part alone, over one running lifespan: the two answers must agree on the
status, the error code, the body's fields and the headers a client acts on, and every
status must be one `/openapi.json` documents for that operation. `eventpro serve`'s
protocol answers the same two routes without ASGI (`api/direct.py`): the same requests
are sent to it over a socket, and HTTP's own cases (pipelining, HTTP/1.0, bodies over
the limit, `100 Continue`) are checked on the wire.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn

from eventpro.api.app import create_app
from eventpro.api.direct import DirectProtocol
from eventpro.api.hot import HOT, HotRoutes
from eventpro.bootstrap import bootstrap
from eventpro.config import Settings

TOKEN = secrets.token_urlsafe(24)
EVENT = {
    "name": "Hot",
    "venue": "Hall",
    "starts_at": "2030-12-12T19:00:00Z",
    "per_buyer_limit": 2,
    "sections": [{"name": "Floor", "capacity": 5, "price_cents": 100}],
}
JSON = {"Content-Type": "application/json"}


Clients = Callable[[httpx.AsyncClient, httpx.AsyncClient], Awaitable[None]]


def with_clients(tmp_path: Any, check: Clients) -> None:
    """Run `check(hot, documented)`: clients of the app and of its FastAPI part alone,
    inside the app's lifespan (so both share its state)."""
    url = f"sqlite:///{tmp_path / 'hot.db'}"
    app = create_app(bootstrap(Settings(database_url=url, admin_token=TOKEN)))

    def client(target: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=target, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    async def run() -> None:
        lifespan = app.api.router.lifespan_context(app.api)
        async with lifespan, client(app) as hot, client(app.api) as documented:
            await check(hot, documented)

    asyncio.run(run())


def _shape(answer: Any) -> tuple[int, Any, str | None]:
    body = answer.json()
    what = body["error"]["code"] if "error" in body else sorted(body)
    return answer.status_code, what, answer.headers.get("retry-after")


async def _operations(client: httpx.AsyncClient) -> dict[tuple[str, str], set[int]]:
    paths = (await client.get("/openapi.json")).json()["paths"]
    return {
        (method.upper(), path): {int(s) for s in operation["responses"] if s.isdigit()}
        for path, item in paths.items()
        for method, operation in item.items()
    }


def test_every_hot_answer_matches_the_documented_route(tmp_path) -> None:
    with_clients(tmp_path, _compare)


async def _compare(
    hot: httpx.AsyncClient, documented: httpx.AsyncClient, on_a_socket: bool = False
) -> None:
    admin = {"Authorization": f"Bearer {TOKEN}"}
    event_id = (await hot.post("/v1/events", json=EVENT, headers=admin)).json()["id"]
    buy = f"/v1/events/{event_id}/purchases"
    paused = (await hot.post("/v1/events", json=EVENT, headers=admin)).json()["id"]
    await hot.post(f"/v1/admin/events/{paused}/pause", headers=admin)
    queued = await hot.post(buy, json={"buyer_id": "first", "quantity": 1, "section": "Floor"})
    assert queued.status_code == 202
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", buy, {"json": {"buyer_id": "b1", "section": "Floor", "quantity": 1}}),
        ("POST", buy, {"content": b"buyer=b", "headers": {"Content-Type": "text/plain"}}),
        ("POST", buy, {"content": b"{not json", "headers": JSON}),
        ("POST", buy, {"json": {"buyer_id": "b", "section": "Floor", "quantity": 1, "x": 1}}),
        ("POST", buy, {"json": {"buyer_id": "b", "section": "Floor", "quantity": 0}}),
        ("POST", buy, {"json": {"buyer_id": "b" * 20_000, "section": "Floor", "quantity": 1}}),
        ("POST", "/v1/events/evt_nope/purchases", {"json": {"buyer_id": "b", "quantity": 1}}),
        ("POST", f"/v1/events/{paused}/purchases", {"json": {"buyer_id": "b", "quantity": 1}}),
        ("GET", f"/v1/purchases/{queued.json()['purchase_id']}", {}),
        ("GET", "/v1/purchases/pur_nope", {}),
    ]
    if not on_a_socket:  # httpx refuses to send it
        tab_key = {"json": {"buyer_id": "b"}, "headers": {"Idempotency-Key": "\t"}}
        cases.append(("POST", buy, tab_key))
    operations = await _operations(hot)
    seen = set()
    for method, path, options in cases:
        ours = _shape(await hot.request(method, path, **options))
        theirs = _shape(await documented.request(method, path, **options))
        assert ours == theirs, (method, path, options)
        template = next(t for m, t in HOT if m == method and path.count("/") == t.count("/"))
        assert ours[0] in operations[(method, template)], (method, template, ours)
        seen.add(ours[0])
    # the cases reach every kind of answer the hot path gives, so none goes unchecked
    assert {200, 202, 400, 404, 413, 422, 429} <= seen


def test_the_hot_routes_are_the_documented_ones_and_counted_by_their_template(tmp_path) -> None:
    async def check(hot: httpx.AsyncClient, _: httpx.AsyncClient) -> None:
        assert set(HOT) <= set(await _operations(hot))
        await hot.get("/v1/purchases/pur_counted")
        metrics = (await hot.get("/metrics")).text
        assert 'route="/v1/purchases/{purchase_id}",status="404"} 1.0' in metrics

    with_clients(tmp_path, check)


def with_server(
    tmp_path: Any, check: Callable[[int, httpx.AsyncClient, list[str]], Awaitable[None]]
) -> None:
    """Run `check(port, documented, via_asgi)` against the app served on a socket by
    uvicorn with `serve`'s protocol, in this process: `via_asgi` lists the paths of the
    hot requests that reached the ASGI handler instead of the protocol's."""
    url = f"sqlite:///{tmp_path / 'direct.db'}"
    app = create_app(bootstrap(Settings(database_url=url, admin_token=TOKEN)))
    via_asgi: list[str] = []
    serve = app.hot.serve

    async def spied(self: HotRoutes, scope: Any, *args: Any) -> None:
        via_asgi.append(scope["path"])
        await serve(scope, *args)

    async def run() -> None:
        config = uvicorn.Config(app, port=0, http=DirectProtocol, log_level="warning")
        server = uvicorn.Server(config)
        served = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        transport = httpx.ASGITransport(app=app.api, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as documented:
                await check(port, documented, via_asgi)
        finally:
            server.should_exit = True
            await served

    app.hot.serve = spied.__get__(app.hot)  # type: ignore[method-assign]
    asyncio.run(run())


def test_the_protocol_answers_hot_requests_as_the_documented_route_does(tmp_path) -> None:
    async def check(port: int, documented: httpx.AsyncClient, via_asgi: list[str]) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as wire:
            await _compare(wire, documented, on_a_socket=True)
        assert via_asgi == [], "hot requests went through ASGI"

    with_server(tmp_path, check)


async def _exchange(port: int, raw: bytes, answers: int = 1) -> list[bytes]:
    """Send `raw` on a new connection; read `answers` answers, then what follows (b""
    when the server closed the connection, None when it kept it open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    heads = []
    for _ in range(answers):
        head = await reader.readuntil(b"\r\n\r\n")
        _, _, length = head.lower().partition(b"content-length: ")
        length = length.split(b"\r\n")[0] or b"0"  # none on a 100 Continue
        heads.append(head + await reader.readexactly(int(length)))
    try:
        rest = await asyncio.wait_for(reader.read(1), 0.3)
    except TimeoutError:
        rest = None  # still open
    writer.close()
    return [*heads, rest]


def test_the_protocol_keeps_http_semantics_on_hot_requests(tmp_path) -> None:
    async def check(port: int, _: httpx.AsyncClient, via_asgi: list[str]) -> None:
        poll = b"GET /v1/purchases/pur_%s?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
        # two polls in one write: both answered, in order, the second through ASGI
        # if the first is still being answered
        first, second, rest = await _exchange(port, poll % b"one" + poll % b"two", answers=2)
        assert first.startswith(b"HTTP/1.1 404 ") and b"pur_one" in first
        assert second.startswith(b"HTTP/1.1 404 ") and b"pur_two" in second
        assert b"\r\ndate: " in first and rest is None  # kept alive
        # HTTP/1.0 and Connection: close: answered, then closed
        old = b"GET /v1/purchases/pur_old HTTP/1.0\r\n\r\n"
        answer, rest = await _exchange(port, old)
        assert answer.startswith(b"HTTP/1.1 404 ") and b"connection: close" in answer
        assert rest == b""
        close = b"GET /v1/purchases/pur_c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        assert (await _exchange(port, close))[-1] == b""
        # a body declared over 16 KiB: 413 before it is read, and the connection goes on
        # (the poll behind it, pipelined, waits for that answer in uvicorn's queue)
        big = b"x" * 20_000
        buy = b"POST /v1/events/evt_x/purchases HTTP/1.1\r\nHost: t\r\n"
        declared = buy + b"Content-Length: %d\r\n\r\n%s" % (len(big), big)
        refused, after, rest = await _exchange(port, declared + poll % b"after", answers=2)
        assert refused.startswith(b"HTTP/1.1 413 ") and b"body_too_large" in refused
        assert after.startswith(b"HTTP/1.1 404 ") and b"pur_after" in after
        # a chunked body past the limit: 413 too
        chunks = b"".join(b"%x\r\n%s\r\n" % (4096, b"y" * 4096) for _ in range(5))
        chunked = buy + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        refused, _ = await _exchange(port, chunked)
        assert refused.startswith(b"HTTP/1.1 413 ")
        assert not [p for p in via_asgi if "evt_x" in p], "a refused body went through ASGI"
        # what the protocol leaves to uvicorn's cycle: 100 Continue, an escaped path
        expect = buy + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"
        continued, answer, _ = await _exchange(port, expect, answers=2)
        assert continued.startswith(b"HTTP/1.1 100 ") or answer.startswith(b"HTTP/1.1 100 ")
        escaped, _ = await _exchange(
            port, b"GET /v1/purchases/pur%5Fesc HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        assert escaped.startswith(b"HTTP/1.1 404 ") and b"pur_esc" in escaped
        assert "/v1/events/evt_x/purchases" in via_asgi and "/v1/purchases/pur_esc" in via_asgi

    with_server(tmp_path, check)
