"""`eventpro event create|show`: events written and read on the store directly, no server.

`create` takes a JSON file shaped like the body of `POST /v1/events`, or options, or
both (options then override the file's fields; `--section`/`--seats` replace its sections).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError

from eventpro.bootstrap import Container, bootstrap
from eventpro.cli.serve import DatabaseUrl, QueueUrl, settings_from
from eventpro.services import events as event_service
from eventpro.services.wire import EventIn, event_json

event_app = typer.Typer(help="Create and show events.", no_args_is_help=True)

SECTION_HELP = "general admission: NAME:CAPACITY:PRICE_CENTS (repeatable)"
SEATS_HELP = "reserved seating: NAME:PRICE_CENTS:LABEL,LABEL,... (repeatable)"


def open_container(database_url: str | None, queue_url: str | None) -> Container:
    """The store and queue of the settings, with the command's URL options on top."""
    return bootstrap(settings_from(database_url=database_url, queue_url=queue_url))


def _show(container: Container, event_id: str) -> None:
    view = event_service.view_event(container.store, container.queue, container.clock, event_id)
    if view is None:
        raise typer.BadParameter(f"no event {event_id!r}", param_hint="EVENT_ID")
    typer.echo(orjson.dumps(event_json(view), option=orjson.OPT_INDENT_2).decode())


def _general(spec: str) -> dict[str, Any]:
    name, capacity, price = _split(spec, "--section")
    capacity_n, price_n = _int(capacity, "--section"), _int(price, "--section")
    return {"name": name, "capacity": capacity_n, "price_cents": price_n}


def _reserved(spec: str) -> dict[str, Any]:
    name, price, labels = _split(spec, "--seats")
    seats = [label.strip() for label in labels.split(",") if label.strip()]
    return {"name": name, "price_cents": _int(price, "--seats"), "seats": seats}


def _split(spec: str, option: str) -> tuple[str, str, str]:
    parts = spec.rsplit(":", 2)  # a section name may itself hold a colon
    if len(parts) != 3 or not parts[0]:
        raise typer.BadParameter(f"{spec!r} is not NAME:…:…", param_hint=option)
    return parts[0], parts[1], parts[2]


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a whole number", param_hint=option) from None


def _read(file: Path) -> dict[str, Any]:
    try:
        body = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="FILE") from None
    if not isinstance(body, dict):
        raise typer.BadParameter("not a JSON object", param_hint="FILE")
    return body


def event_body(
    file: Path | None, fields: dict[str, Any], sections: list[str], seats: list[str]
) -> EventIn:
    """The validated event: the file's JSON (if any), overridden by the options given."""
    body = _read(file) if file else {}
    body.update({k: v for k, v in fields.items() if v is not None})
    if sections or seats:
        body["sections"] = [_general(s) for s in sections] + [_reserved(s) for s in seats]
    try:
        return EventIn.model_validate_json(orjson.dumps(body))
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE or options") from None


@event_app.command("create")
def create(
    file: Annotated[
        Path | None,
        typer.Argument(envvar="EVENTPRO_EVENT_FILE", exists=True, dir_okay=False, help="JSON"),
    ] = None,
    name: Annotated[str | None, typer.Option(envvar="EVENTPRO_EVENT_NAME")] = None,
    venue: Annotated[str | None, typer.Option(envvar="EVENTPRO_EVENT_VENUE")] = None,
    starts_at: Annotated[
        str | None, typer.Option(envvar="EVENTPRO_EVENT_STARTS_AT", help="RFC 3339")
    ] = None,
    sale_opens_at: Annotated[
        str | None, typer.Option(envvar="EVENTPRO_EVENT_SALE_OPENS_AT", help="default: now")
    ] = None,
    per_buyer_limit: Annotated[
        int | None, typer.Option(envvar="EVENTPRO_EVENT_PER_BUYER_LIMIT", help="default 4")
    ] = None,
    section: Annotated[
        list[str] | None, typer.Option(envvar="EVENTPRO_EVENT_SECTIONS", help=SECTION_HELP)
    ] = None,
    seats: Annotated[
        list[str] | None, typer.Option(envvar="EVENTPRO_EVENT_SEATS", help=SEATS_HELP)
    ] = None,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Create an event from a JSON file (the body of POST /v1/events) and/or options."""
    fields = {
        "name": name,
        "venue": venue,
        "starts_at": starts_at,
        "sale_opens_at": sale_opens_at,
        "per_buyer_limit": per_buyer_limit,
    }
    body = event_body(file, fields, section or [], seats or [])
    container = open_container(database_url, queue_url)
    try:
        event = event_service.create_event_from(
            body, container.store, container.clock, container.ids
        )
        _show(container, event.id)
    finally:
        container.close()


@event_app.command("show")
def show(
    event_id: Annotated[str, typer.Argument(envvar="EVENTPRO_EVENT_ID")],
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Print an event with live remaining stock, status and queue depth."""
    container = open_container(database_url, queue_url)
    try:
        _show(container, event_id)
    finally:
        container.close()


def register(app: typer.Typer) -> None:
    app.add_typer(event_app, name="event")
