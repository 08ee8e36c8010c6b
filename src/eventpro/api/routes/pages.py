"""The buyer's page, `GET /events/{id}`, and what every page shares: templates, static files.

The pages are server-rendered Jinja2 templates with a little plain JavaScript; they call
the public API like any buyer's app, so they are left out of `/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from eventpro.api.deps import ContainerDep
from eventpro.bootstrap import Container
from eventpro.services.events import view_event
from eventpro.services.wire import event_json

router = APIRouter(include_in_schema=False)

MAX_SEATS_SHOWN = 5_000  # seats drawn per section; a larger map is left to the seats endpoint
# The pages' scripts and styles come from this process only; nothing is framed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("eventpro.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def static_files() -> StaticFiles:
    """The pages' CSS and JavaScript, served from the package's own files."""
    return StaticFiles(packages=[("eventpro.web", "static")])


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(PAGE_HEADERS)
    return response


def not_found_page(request: Request, what: str) -> Response:
    return page(request, "not_found.html", {"what": what}, 404)


def money(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


templates.env.filters["money"] = money


def _seat_maps(container: Container, event_id: str, sections: list[Any]) -> dict[str, Any]:
    return {
        s.name: container.store.seat_map(event_id, s.name)[:MAX_SEATS_SHOWN]
        for s in sections
        if s.seats
    }


@router.get("/events/{event_id}", response_class=HTMLResponse)
async def buyer_page(event_id: str, request: Request, container: ContainerDep) -> Response:
    """The event, its live stock and seat maps, the buy form and the waiting line."""
    c = container
    view = await run_in_threadpool(view_event, c.store, c.queue, c.clock, event_id)
    if view is None:
        return not_found_page(request, f"event {event_id}")
    seats = await run_in_threadpool(_seat_maps, c, event_id, list(view.event.sections))
    context = {"event": event_json(view), "seats": seats, "title": view.event.name}
    return page(request, "buyer.html", context)
