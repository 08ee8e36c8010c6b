"""Operations (admin): dead letters, redrive, pause and resume."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from eventpro.api.body import documented, parse_body
from eventpro.api.deps import Admin, AdmissionDep, ContainerDep, Cursor, Limit, ViewsDep
from eventpro.api.routes.common import errors, json_response, not_found, page_json, paged
from eventpro.api.routes.events import event_answer
from eventpro.api.schemas import DeadLetterPage, EventOut, Redriven
from eventpro.services import events as event_service
from eventpro.services.wire import RedriveIn, dead_letter_json

router = APIRouter(tags=["operations"], dependencies=[Admin])


@router.get("/v1/admin/dead-letters", response_model=DeadLetterPage, responses=errors(401, 422))
async def dead_letters(
    container: ContainerDep,
    event_id: str | None = Query(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$"),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Requests in the dead-letter queue, with their last error and attempt count."""
    page = await run_in_threadpool(
        paged, lambda: container.queue.dead_letters(event_id, limit, cursor)
    )
    return json_response(page_json(page, dead_letter_json))


@router.post(
    "/v1/admin/dead-letters/redrive",
    response_model=Redriven,
    responses=errors(400, 401, 413, 422),
    openapi_extra=documented(RedriveIn),
)
async def redrive(request: Request, container: ContainerDep) -> Response:
    """Put dead letters back in line at their original positions."""
    body = await parse_body(request, RedriveIn)
    count = await run_in_threadpool(container.queue.redrive, body.event_id, body.purchase_ids)
    return json_response({"redriven": count})


async def _set_paused(
    container: ContainerDep,
    admission: AdmissionDep,
    views: ViewsDep,
    event_id: str,
    paused: bool,
) -> Response:
    found = await run_in_threadpool(event_service.set_paused, container.store, event_id, paused)
    if not found:
        raise not_found("event", event_id)
    admission.forget_event(event_id)
    views.forget(event_id)
    return json_response(await event_answer(container, event_id))


@router.post(
    "/v1/admin/events/{event_id}/pause", response_model=EventOut, responses=errors(401, 404)
)
async def pause(
    event_id: str, container: ContainerDep, admission: AdmissionDep, views: ViewsDep
) -> Response:
    """Stop admission for one event: purchases get 429 and the line keeps its order."""
    return await _set_paused(container, admission, views, event_id, True)


@router.post(
    "/v1/admin/events/{event_id}/resume", response_model=EventOut, responses=errors(401, 404)
)
async def resume(
    event_id: str, container: ContainerDep, admission: AdmissionDep, views: ViewsDep
) -> Response:
    """Restart admission for one event."""
    return await _set_paused(container, admission, views, event_id, False)
