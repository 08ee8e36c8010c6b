"""Printing what the CLI found: audit reports as tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from eventpro.services.audit import AuditReport


def print_audit(console: Console, report: AuditReport) -> None:
    table = Table(title=f"audit of {report.event_id}")
    table.add_column("#", justify="right")
    table.add_column("invariant")
    table.add_column("result")
    table.add_column("numbers")
    for check in report.checks:
        verdict = "[green]ok[/]" if check.ok else "[bold red]BROKEN[/]"
        if not check.applies:
            verdict = "[dim]n/a[/]"
        table.add_row(str(check.number), check.name, verdict, check.detail)
    console.print(table)
    counts = ", ".join(f"{k} {v:,}" for k, v in report.counts.items())
    console.print(f"counts: {counts}")
