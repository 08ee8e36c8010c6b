"""The bare Starlette hello-world that benchmarks compare against: a POST that reads the body.

Served exactly as `eventpro serve` is (uvicorn, uvloop, httptools, no access log), it is
the ceiling of this machine for an ASGI endpoint.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def hello(request: Request) -> Response:
    await request.body()
    return Response(b'{"hello":"world"}', status_code=202, media_type="application/json")


async def healthz(_: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[Route("/hello", hello, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
)
