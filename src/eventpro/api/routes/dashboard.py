"""The operator's dashboard, `/admin`: login, every event, one event's live sale.

The admin token is typed into the login form once; the session lives in an HttpOnly,
SameSite=Strict cookie (`api/session.py`). Every form that changes something carries the
session's CSRF token in a hidden field, checked here before anything is changed.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from eventpro.api.deps import ContainerDep
from eventpro.api.errors import ApiError
from eventpro.api.event_form import FormErrors, field_of, parse_event_form
from eventpro.api.metrics import Metrics
from eventpro.api.routes.common import json_response
from eventpro.api.routes.pages import not_found_page, page
from eventpro.api.session import COOKIE, LIFETIME, Session, Sessions
from eventpro.bootstrap import Container
from eventpro.domain.errors import DomainError
from eventpro.services import events as event_service
from eventpro.services.purchases import count_purchases
from eventpro.services.wire import dead_letter_json, event_json

router = APIRouter(include_in_schema=False)

EVENTS_SHOWN = 100
DEAD_LETTERS_SHOWN = 100


def _session(request: Request) -> Session | None:
    sessions: Sessions = request.app.state.sessions
    return sessions.check(request.cookies.get(COOKIE))


def _login(request: Request, status: int = 200, error: str | None = None) -> Response:
    return page(request, "login.html", {"title": "Operator login", "error": error}, status)


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if raw and content_type != "application/x-www-form-urlencoded":
        raise ApiError(400, "unsupported_media_type", "send the form as urlencoded")
    return dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))


async def _changing(request: Request) -> tuple[Session, dict[str, str]]:
    """The session and form of a request that changes something: 401 without a session,
    403 without its CSRF token."""
    session = _session(request)
    if session is None:
        raise ApiError(401, "unauthorized", "log in at /admin first")
    form = await _form(request)
    sessions: Sessions = request.app.state.sessions
    if not sessions.csrf_ok(session, form.get("csrf")):
        raise ApiError(403, "csrf_failed", "the form's CSRF token is missing or wrong")
    return session, form


@router.post("/admin/login")
async def login(request: Request) -> Response:
    """Exchange the admin token typed into the form for a session cookie."""
    sessions: Sessions = request.app.state.sessions
    cookie = sessions.login((await _form(request)).get("token", ""))
    if cookie is None:
        return _login(request, 401, "That is not the admin token.")
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=LIFETIME,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/admin/logout")
async def logout(request: Request) -> Response:
    await _changing(request)
    response = RedirectResponse("/admin", status_code=303)
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict")
    return response


def _events(container: Container) -> list[dict[str, Any]]:
    c = container
    shown = []
    for event in event_service.list_events(c.store, EVENTS_SHOWN, None).items:
        view = event_service.view_event(c.store, c.queue, c.clock, event.id)
        if view is not None:
            shown.append(event_json(view))
    return shown


async def _home(
    request: Request, container: Container, session: Session, status: int = 200, **form: Any
) -> Response:
    context = {
        "title": "Sales",
        "csrf": session.csrf,
        "events": await run_in_threadpool(_events, container),
        "values": form.get("values", {}),
        "errors": form.get("errors", {}),
    }
    return page(request, "admin.html", context, status)


@router.get("/admin")
async def home(request: Request, container: ContainerDep) -> Response:
    """Every event with its status, and the form that creates one."""
    session = _session(request)
    if session is None:
        return _login(request)
    return await _home(request, container, session)


@router.post("/admin/events")
async def create(request: Request, container: ContainerDep) -> Response:
    """Create an event from the form; its errors are shown beside their fields."""
    session, form = await _changing(request)
    c = container
    try:
        body = parse_event_form(form)
        event = await run_in_threadpool(
            event_service.create_event_from, body, c.store, c.clock, c.ids
        )
    except FormErrors as invalid:
        errors = invalid.errors
    except DomainError as refused:
        errors = {field_of(refused.field): refused.message}
    else:
        return RedirectResponse(f"/admin/events/{event.id}", status_code=303)
    return await _home(request, container, session, 422, values=form, errors=errors)


def _dashboard(container: Container, event_id: str) -> dict[str, Any] | None:
    c = container
    view = event_service.view_event(c.store, c.queue, c.clock, event_id)
    if view is None:
        return None
    letters = c.queue.dead_letters(event_id, DEAD_LETTERS_SHOWN, None).items
    return {
        "event": event_json(view),
        "counts": count_purchases(c.queue, event_id),
        "dead_letters": [dead_letter_json(letter) for letter in letters],
    }


@router.get("/admin/events/{event_id}")
async def dashboard(event_id: str, request: Request, container: ContainerDep) -> Response:
    """One event's sale: counts, live charts, dead letters, pause and resume."""
    session = _session(request)
    if session is None:
        return _login(request, 401, "Log in to see this sale.")
    state = await run_in_threadpool(_dashboard, container, event_id)
    if state is None:
        return not_found_page(request, f"event {event_id}")
    redriven = request.query_params.get("redriven")
    context = {**state, "title": state["event"]["name"], "csrf": session.csrf}
    return page(request, "admin_event.html", {**context, "redriven": redriven})


@router.get("/admin/events/{event_id}/stats")
async def stats(event_id: str, request: Request, container: ContainerDep) -> Response:
    """What the dashboard's charts plot, sampled once a second by its script."""
    if _session(request) is None:
        raise ApiError(401, "unauthorized", "log in at /admin first")
    state = await run_in_threadpool(_dashboard, container, event_id)
    if state is None:
        raise ApiError(404, "event_not_found", f"no event {event_id!r}")
    metrics: Metrics = request.app.state.metrics
    state["at"] = time.time()
    state["admission_buckets"] = metrics.admission_buckets()
    return json_response(state, headers={"Cache-Control": "no-store"})


async def _set_paused(request: Request, container: Container, event_id: str, paused: bool) -> None:
    await _changing(request)
    found = await run_in_threadpool(event_service.set_paused, container.store, event_id, paused)
    if not found:
        raise ApiError(404, "event_not_found", f"no event {event_id!r}")
    request.app.state.admission.forget_event(event_id)


@router.post("/admin/events/{event_id}/pause")
async def pause(event_id: str, request: Request, container: ContainerDep) -> Response:
    await _set_paused(request, container, event_id, True)
    return RedirectResponse(f"/admin/events/{event_id}", status_code=303)


@router.post("/admin/events/{event_id}/resume")
async def resume(event_id: str, request: Request, container: ContainerDep) -> Response:
    await _set_paused(request, container, event_id, False)
    return RedirectResponse(f"/admin/events/{event_id}", status_code=303)


@router.post("/admin/events/{event_id}/redrive")
async def redrive(event_id: str, request: Request, container: ContainerDep) -> Response:
    """Put the event's dead letters back in line at their original positions."""
    await _changing(request)
    count = await run_in_threadpool(container.queue.redrive, event_id, None)
    return RedirectResponse(f"/admin/events/{event_id}?redriven={count}", status_code=303)
