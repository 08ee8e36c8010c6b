"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from eventpro.api.deps import ContainerDep, MetricsDep
from eventpro.api.routes.common import errors, json_response
from eventpro.api.schemas import Alive, Ready
from eventpro.ports import StoreError

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", response_model=Alive)
async def healthz() -> Response:
    """The process is alive."""
    return json_response({"status": "ok"})


@router.get("/readyz", response_model=Ready, responses=errors(503))
async def readyz(container: ContainerDep) -> Response:
    """Every backend answers: 200, else 503 naming the backend that does not.

    `status` is `degraded` when the queue would lose admitted requests in a crash of its
    server (Redis without an append-only file).
    """
    states: dict[str, str] = {}
    for name, backend in (("database", container.store), ("queue", container.queue)):
        try:
            await run_in_threadpool(backend.ping)
            states[name] = "ok"
        except StoreError as exc:
            log.warning("readyz: the %s is unavailable: %s", name, exc)
            states[name] = "unavailable"  # the cause stays in the log: /readyz is public
    failing = [name for name, state in states.items() if state != "ok"]
    if failing:
        retry = str(container.settings.retry_after)
        return json_response(
            {
                "status": "unavailable",
                "backends": states,
                "error": {"code": "backend_unavailable", "message": f"{', '.join(failing)} down"},
            },
            503,
            {"Retry-After": retry},
        )
    warning = await run_in_threadpool(container.queue.durability_warning)
    if warning:
        return json_response({"status": "degraded", "backends": states, "durability": warning})
    return json_response({"status": "ready", "backends": states, "durability": "ok"})


@router.get("/metrics")
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
