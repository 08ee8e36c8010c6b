"""Events: create (admin), show, list, seat map."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from eventpro.api.body import documented, parse_body
from eventpro.api.deps import Admin, ContainerDep, Cursor, Limit
from eventpro.api.errors import ApiError
from eventpro.api.routes.common import errors, json_response, not_found, page_json, paged
from eventpro.api.schemas import EventOut, EventPage, SeatPage
from eventpro.bootstrap import Container
from eventpro.domain.model import Event
from eventpro.services import events as event_service
from eventpro.services.events import EventViews
from eventpro.services.wire import EventIn, event_json

router = APIRouter(tags=["events"])
PUBLIC_PAGE = 100  # events a page of the public list holds at most


async def event_answer(
    container: Container, event_id: str, views: EventViews | None = None
) -> dict[str, object]:
    """The event's JSON, from `views` (cached briefly) if given, else read now."""
    if views is not None:
        view = await run_in_threadpool(views.get, event_id)
    else:
        view = await run_in_threadpool(
            event_service.view_event, container.store, container.queue, container.clock, event_id
        )
    if view is None:
        raise not_found("event", event_id)
    return event_json(view)


@router.post(
    "/v1/events",
    status_code=201,
    response_model=EventOut,
    dependencies=[Admin],
    responses=errors(400, 401, 413, 422),
    openapi_extra=documented(EventIn),
)
async def create_event(request: Request, container: ContainerDep) -> Response:
    """Create an event with its inventory (admin)."""
    body = await parse_body(request, EventIn)
    event = await run_in_threadpool(
        event_service.create_event_from, body, container.store, container.clock, container.ids
    )
    answer = await event_answer(container, event.id)
    return json_response(answer, 201, {"Location": f"/v1/events/{event.id}"})


@router.get("/v1/events", response_model=EventPage, responses=errors(422))
async def list_events(
    request: Request, container: ContainerDep, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    """A page of events, newest first (at most 100 a page: the list is public, and each
    event costs a read; `next_cursor` leads to the rest)."""
    limit = min(limit, PUBLIC_PAGE)
    page = await run_in_threadpool(
        paged, lambda: event_service.list_events(container.store, limit, cursor)
    )
    views: EventViews = request.app.state.views

    def render(event: Event) -> dict[str, object]:
        view = views.get(event.id)
        assert view is not None
        return event_json(view)

    body = await run_in_threadpool(page_json, page, render)
    return json_response(body)


@router.get("/v1/events/{event_id}", response_model=EventOut, responses=errors(404))
async def get_event(event_id: str, request: Request, container: ContainerDep) -> Response:
    """The event with live remaining stock, status and queue depth."""
    return json_response(await event_answer(container, event_id, request.app.state.views))


@router.get("/v1/events/{event_id}/seats", response_model=SeatPage, responses=errors(404, 422))
async def seat_map(
    event_id: str,
    container: ContainerDep,
    section: str = Query(min_length=1, max_length=100),
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """A page of the seats of a reserved section, in seat order, each with `available`."""
    inventory = await run_in_threadpool(container.store.get_inventory, event_id)
    if inventory is None:
        raise not_found("event", event_id)
    found = inventory.event.section(section)
    if found is None or not found.seats:
        raise ApiError(
            422,
            "unknown_section",
            f"event {event_id} has no reserved section {section!r}",
            "section",
        )
    seats = await run_in_threadpool(container.store.seat_map, event_id, section)
    start = int(cursor) if cursor else 0  # a seat's place in the section (Cursor: digits)
    chosen = seats[start : start + limit]
    more = start + limit < len(seats)
    return json_response(
        {
            "event_id": event_id,
            "section": section,
            "items": [{"label": label, "available": free} for label, free in chosen],
            "next_cursor": str(start + limit) if more else None,
        }
    )
