"""Dependencies of the routes: the wired container, the admission service, admin auth.

All are `async def`: FastAPI runs a plain `def` dependency in a thread pool, and two thread
hops per request cost the hot path most of its throughput.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Query, Request

from eventpro.api.errors import ApiError
from eventpro.api.metrics import Metrics
from eventpro.bootstrap import Container
from eventpro.services.admission import AdmissionService
from eventpro.services.events import EventViews


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_admission(request: Request) -> AdmissionService:
    admission: AdmissionService = request.app.state.admission
    return admission


async def get_views(request: Request) -> EventViews:
    views: EventViews = request.app.state.views
    return views


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def require_admin(request: Request) -> None:
    """Refuse a request without `Authorization: Bearer <the admin token>`."""
    expected: bytes = request.app.state.admin_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    presented = token.strip().encode()
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint needs Authorization: Bearer <admin token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


ContainerDep = Annotated[Container, Depends(get_container)]
AdmissionDep = Annotated[AdmissionService, Depends(get_admission)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ViewsDep = Annotated[EventViews, Depends(get_views)]
Admin = Depends(require_admin)
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
# Every cursor is digits (a place in the listing): any such string is a valid cursor.
Cursor = Annotated[
    str | None, Query(pattern=r"^[0-9]{1,18}$", description="from the previous page")
]
