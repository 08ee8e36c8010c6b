"""`event create|show`, `dlq list|redrive` and `audit`: operator commands on the backends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from eventpro.api.schemas import EventIn, create_event_from, event_json
from eventpro.bootstrap import Container, bootstrap
from eventpro.cli.report import print_audit
from eventpro.cli.serve import DatabaseUrl, QueueUrl, settings_from
from eventpro.services import events as event_service
from eventpro.services.audit import audit_event

console = Console()
event_app = typer.Typer(help="Create and show events.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter queue: list and redrive.", no_args_is_help=True)


def _open(database_url: str | None, queue_url: str | None) -> Container:
    return bootstrap(settings_from(database_url=database_url, queue_url=queue_url))


def _show(container: Container, event_id: str) -> None:
    view = event_service.view_event(container.store, container.queue, container.clock, event_id)
    if view is None:
        raise typer.BadParameter(f"no event {event_id!r}", param_hint="EVENT_ID")
    typer.echo(orjson.dumps(event_json(view), option=orjson.OPT_INDENT_2).decode())


@event_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="event JSON")],
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Create an event from a JSON file shaped like the body of POST /v1/events."""
    try:
        body = EventIn.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    container = _open(database_url, queue_url)
    try:
        event = create_event_from(body, container.store, container.clock, container.ids)
        _show(container, event.id)
    finally:
        container.close()


@event_app.command("show")
def show(event_id: str, database_url: DatabaseUrl = None, queue_url: QueueUrl = None) -> None:
    """Print an event with live remaining stock, status and queue depth."""
    container = _open(database_url, queue_url)
    try:
        _show(container, event_id)
    finally:
        container.close()


@dlq_app.command("list")
def dlq_list(
    event_id: Annotated[str | None, typer.Option(help="only this event")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """List dead-lettered requests with their attempts and last error."""
    container = _open(database_url, queue_url)
    try:
        page = container.queue.dead_letters(event_id, limit, None)
    finally:
        container.close()
    table = Table(title=f"dead letters ({len(page.items)})")
    for column in ("purchase", "event", "position", "attempts", "last error"):
        table.add_column(column)
    for letter in page.items:
        p = letter.purchase
        table.add_row(p.id, p.event_id, str(p.position), str(letter.attempts), letter.last_error)
    console.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    event_id: Annotated[str | None, typer.Option(help="redrive every dead letter of it")] = None,
    purchase_id: Annotated[list[str] | None, typer.Option(help="redrive these")] = None,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Put dead letters back in line at their original positions."""
    if (event_id is None) == (not purchase_id):
        raise typer.BadParameter("give --event-id or --purchase-id (not both)")
    container = _open(database_url, queue_url)
    try:
        count = container.queue.redrive(event_id, purchase_id)
    finally:
        container.close()
    typer.echo(f"redriven: {count}")


def audit(
    event_id: str,
    settled: Annotated[bool, typer.Option(help="a request still queued breaks invariant 3")] = True,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Check the six invariants of EVENT_ID from the stored data; exit 1 if any is broken."""
    container = _open(database_url, queue_url)
    try:
        report = audit_event(container.store, container.queue, event_id, settled)
    finally:
        container.close()
    if report is None:
        raise typer.BadParameter(f"no event {event_id!r}", param_hint="EVENT_ID")
    print_audit(console, report)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(event_app, name="event")
    app.add_typer(dlq_app, name="dlq")
    app.command()(audit)
