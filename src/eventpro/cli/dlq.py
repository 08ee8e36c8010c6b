"""`eventpro dlq list|redrive`: the dead-letter queue, through the queue port."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eventpro.cli.events import open_container
from eventpro.cli.serve import DatabaseUrl, QueueUrl

console = Console()
dlq_app = typer.Typer(help="The dead-letter queue: list and redrive.", no_args_is_help=True)

EventId = Annotated[str | None, typer.Option(envvar="EVENTPRO_DLQ_EVENT_ID", help="this event")]


@dlq_app.command("list")
def dlq_list(
    event_id: EventId = None,
    limit: Annotated[int, typer.Option(envvar="EVENTPRO_DLQ_LIMIT", min=1, max=1000)] = 100,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """List dead-lettered requests with their attempts and last error (the first LIMIT)."""
    container = open_container(database_url, queue_url)
    try:
        page = container.queue.dead_letters(event_id, limit, None)
    finally:
        container.close()
    more = " (more: raise --limit)" if page.next_cursor else ""
    table = Table(title=f"dead letters ({len(page.items)}){more}")
    for column in ("purchase", "event", "position", "attempts", "failed at", "last error"):
        table.add_column(column)
    for letter in page.items:
        p = letter.purchase
        table.add_row(
            p.id,
            p.event_id,
            str(p.position),
            str(letter.attempts),
            letter.failed_at.isoformat(timespec="seconds"),
            letter.last_error,
        )
    console.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    event_id: EventId = None,
    purchase_id: Annotated[
        list[str] | None, typer.Option(envvar="EVENTPRO_DLQ_PURCHASE_IDS", help="these (repeat)")
    ] = None,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Put dead letters back in line at their original positions."""
    if (event_id is None) == (not purchase_id):
        raise typer.BadParameter("give --event-id or --purchase-id (not both)")
    container = open_container(database_url, queue_url)
    try:
        count = container.queue.redrive(event_id, purchase_id)
    finally:
        container.close()
    typer.echo(f"redriven: {count}")


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
