"""Reporting what the CLI found: audit reports as tables, benchmark results as JSON files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
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


def write_results(results: dict[str, Any], path: Path) -> None:
    """A bench's results as indented JSON (its directory exists: `bench` makes it first)."""
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
