"""`eventpro audit EVENT_ID`: the six invariants, checked from the stored data; exit 1 if broken."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from eventpro.cli.events import open_container
from eventpro.cli.report import print_audit
from eventpro.cli.serve import DatabaseUrl, QueueUrl
from eventpro.domain.model import Strategy
from eventpro.services.audit import audit_event

console = Console()


def audit(
    event_id: Annotated[str, typer.Argument(envvar="EVENTPRO_AUDIT_EVENT_ID")],
    expect_settled: Annotated[
        bool,
        typer.Option(
            "--expect-settled/--no-expect-settled",
            "--settled/--no-settled",
            envvar="EVENTPRO_AUDIT_EXPECT_SETTLED",
            help="a request still queued breaks invariant 3 (off: only count them)",
        ),
    ] = True,
    strategy: Annotated[
        Strategy,
        typer.Option(envvar="EVENTPRO_STRATEGY", help="the strategy the event was sold with"),
    ] = Strategy.QUEUED,
    acknowledged: Annotated[
        Path | None,
        typer.Option(
            envvar="EVENTPRO_AUDIT_ACKNOWLEDGED",
            exists=True,
            dir_okay=False,
            help="the purchase ids a client was answered 202 for (one per line, or a JSON"
            " list): each must be stored, and final or dead-lettered",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    queue_url: QueueUrl = None,
) -> None:
    """Check the six invariants of EVENT_ID from the stored data; exit 1 if any is broken."""
    container = open_container(database_url, queue_url)
    try:
        synchronous = strategy is not Strategy.QUEUED
        report = audit_event(
            container.store,
            container.queue,
            event_id,
            expect_settled,
            synchronous,
            read_acknowledged(acknowledged) if acknowledged else None,
        )
    finally:
        container.close()
    if report is None:
        raise typer.BadParameter(f"no event {event_id!r}", param_hint="EVENT_ID")
    print_audit(console, report)
    if not report.ok:
        raise typer.Exit(1)


def read_acknowledged(path: Path) -> set[str]:
    """Purchase ids from a file: a JSON list, or one id per line."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        ids = orjson.loads(text)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise typer.BadParameter("not a JSON list of ids", param_hint="--acknowledged")
        return set(ids)
    return {line.strip() for line in text.splitlines() if line.strip()}


def register(app: typer.Typer) -> None:
    app.command()(audit)
