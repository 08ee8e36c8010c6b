"""The raw hot path (`api/hot.py`) and the FastAPI routes that document it answer alike.

`create_app` serves the purchase POST and the poll from raw ASGI handlers; FastAPI keeps
the same routes for `/openapi.json`. Every request below is sent both ways, to the app and
to its FastAPI part alone, over one running lifespan: the two answers must agree on the
status, the error code, the body's fields and the headers a client acts on, and every
status must be one `/openapi.json` documents for that operation.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from eventpro.api.app import create_app
from eventpro.api.hot import HOT
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


async def _compare(hot: httpx.AsyncClient, documented: httpx.AsyncClient) -> None:
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
        ("POST", buy, {"json": {"buyer_id": "b"}, "headers": {"Idempotency-Key": "\t"}}),
        ("POST", "/v1/events/evt_nope/purchases", {"json": {"buyer_id": "b", "quantity": 1}}),
        ("POST", f"/v1/events/{paused}/purchases", {"json": {"buyer_id": "b", "quantity": 1}}),
        ("GET", f"/v1/purchases/{queued.json()['purchase_id']}", {}),
        ("GET", "/v1/purchases/pur_nope", {}),
    ]
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
