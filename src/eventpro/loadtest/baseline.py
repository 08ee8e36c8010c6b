"""The bare Starlette apps that benchmarks compare against, served as `eventpro serve` is
(uvicorn, uvloop, httptools, no access log):

- `POST /hello` reads the body and answers: the ceiling of this machine for an endpoint;
- `POST /hello-redis` also makes one Redis round trip (`INCR`), the floor of any admission
  that keeps its line in Redis (`EVENTPRO_BASELINE_REDIS_URL`);
- `POST /v1/events/{id}/purchases` answers like `/hello` with a purchase in line, so the
  load generator can be measured against `wrk` on the path it plays;
- `GET /v1/purchases/{id}` answers a poll's JSON without reading anything: the HTTP part
  of a poll (`bench --polls`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HELLO = b'{"hello":"world"}'
QUEUED = b'{"purchase_id":"pur_baseline","status":"queued","position":1,"reason":null}'
POLLED = (
    b'{"purchase_id":"pur_baseline","event_id":"evt_baseline","buyer_id":"b","status":"queued",'
    b'"position":1,"ahead":0,"reason":null,"order":null}'
)


async def hello(request: Request) -> Response:
    await request.body()
    return Response(HELLO, status_code=202, media_type="application/json")


async def hello_redis(request: Request) -> Response:
    await request.body()
    await request.app.state.redis.incr("eventpro_baseline:hits")
    return Response(HELLO, status_code=202, media_type="application/json")


async def purchase(request: Request) -> Response:
    await request.body()
    return Response(QUEUED, status_code=202, media_type="application/json")


async def poll(_: Request) -> Response:
    return Response(POLLED, media_type="application/json")


async def healthz(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("EVENTPRO_BASELINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    # a request waits for a pooled connection rather than fail: redis-py's default pool
    # refuses a connection beyond its limit, and 500s would flatter whatever is compared
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=256, timeout=30)
    app.state.redis = aioredis.Redis(connection_pool=pool)
    try:
        yield
    finally:
        await app.state.redis.delete("eventpro_baseline:hits")
        await app.state.redis.aclose()


app = Starlette(
    routes=[
        Route("/hello", hello, methods=["POST"]),
        Route("/hello-redis", hello_redis, methods=["POST"]),
        Route("/v1/events/{event_id}/purchases", purchase, methods=["POST"]),
        Route("/v1/purchases/{purchase_id}", poll, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=lifespan,
)
