"""`eventpro loadtest URL`: play a scenario against a deployment; print and save the results."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventpro.loadtest.client import create_event
from eventpro.loadtest.results import Counters, LoadResult
from eventpro.loadtest.run import run_load
from eventpro.loadtest.scenario import PRESETS, Scenario, ScenarioError, describe, load_scenario

console = Console()
errors = Console(stderr=True)


class RetryPolicy(StrEnum):
    NONE = "none"
    IMMEDIATE = "immediate"
    BACKOFF = "backoff"


class Wait(StrEnum):
    POLL = "poll"
    STREAM = "stream"
    NONE = "none"


def scenario_from_options(
    scenario_file: Path | None, preset: str | None, **overrides: object
) -> Scenario:
    """The scenario of the file or preset with the command line's values on top; a bad
    value exits 2 with the field named, never a traceback."""
    try:
        return load_scenario(scenario_file, preset).with_overrides(**overrides)
    except ScenarioError as exc:
        errors.print(f"error: {exc}", markup=False)
    except ValidationError as exc:
        errors.print(f"error: {describe(exc, 'option')}", markup=False)
    raise typer.Exit(2)


def loadtest(
    url: Annotated[str, typer.Argument(envvar="EVENTPRO_URL", help="the deployment's base URL")],
    event_id: Annotated[
        str | None, typer.Option(envvar="EVENTPRO_LOADTEST_EVENT_ID", help="the event on sale")
    ] = None,
    scenario_file: Annotated[
        Path | None, typer.Option("--scenario", help="a scenario TOML file")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help=f"a built-in scenario: {', '.join(sorted(PRESETS))}")
    ] = None,
    buyers: Annotated[int | None, typer.Option(help="overrides the scenario's buyers")] = None,
    duration: Annotated[float | None, typer.Option(help="arrival.duration_s")] = None,
    retry: Annotated[RetryPolicy | None, typer.Option(help="retry.policy")] = None,
    wait: Annotated[Wait | None, typer.Option(help="how buyers learn their decision")] = None,
    connections: Annotated[int | None, typer.Option(help="connections per process")] = None,
    processes: Annotated[int | None, typer.Option(help="client processes")] = None,
    tickets: Annotated[
        int, typer.Option(help="with --admin-token and no --event-id: the event's capacity")
    ] = 1000,
    admin_token: Annotated[
        str | None, typer.Option(envvar="EVENTPRO_ADMIN_TOKEN", show_default=False)
    ] = None,
    out: Annotated[Path, typer.Option(help="the JSON results file")] = Path(
        "loadtest-results/results.json"
    ),
) -> None:
    """Play a scenario against URL: every buyer's timings and outcome, a per-second series."""
    scenario = scenario_from_options(
        scenario_file,
        preset,
        buyers=buyers,
        **{"arrival.duration_s": duration},
        **{"retry.policy": retry.value if retry else None},
        wait=wait.value if wait else None,
        connections=connections,
        processes=processes,
    )
    base = url.rstrip("/")
    if event_id is None:
        if not admin_token:
            raise typer.BadParameter("give --event-id, or --admin-token to create an event")
        event_id = create_event(base, admin_token, _event(scenario, tickets))
        console.print(f"created event {event_id} with {tickets:,} tickets")
    console.print(
        f"loadtest {scenario.name}: {scenario.buyers:,} buyers, {scenario.arrival.shape} over"
        f" {scenario.arrival.duration_s:g} s, retry {scenario.retry.policy}, wait {scenario.wait},"
        f" {scenario.processes} process(es) x {scenario.connections} connections"
    )
    result = _run_with_progress(base, event_id, scenario)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_SERIALIZE_NUMPY))
    print_summary(result.summary())
    console.print(f"results: {out}")


def _run_with_progress(base: str, event_id: str, scenario: Scenario) -> LoadResult:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        answered = bar.add_task("answered", total=None)
        decided = bar.add_task("decided", total=None)

        def show(counters: Counters, total: int) -> None:
            bar.update(answered, completed=counters.answered, total=None)
            bar.update(decided, completed=counters.decided, total=total)

        return run_load(base, event_id, scenario, progress=show)


def print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="load test")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        table.add_row(key.replace("_", " "), shown)
    console.print(table)


def _event(scenario: Scenario, tickets: int) -> dict[str, object]:
    mix = scenario.mix
    sections: list[dict[str, object]] = [
        {"name": mix.section, "capacity": tickets, "price_cents": 5_000}
    ]
    if mix.seats_share > 0:
        seats = [f"{mix.seat_section}{n}" for n in range(1, max(1, tickets // 10) + 1)]
        sections.append({"name": mix.seat_section, "seats": seats, "price_cents": 9_000})
    return {
        "name": f"Load test: {scenario.name}",
        "venue": "Load hall",
        "starts_at": "2030-01-01T20:00:00Z",
        "per_buyer_limit": min(10, max(4, scenario.mix.quantity * scenario.requests_per_buyer)),
        "sections": sections,
    }


def register(app: typer.Typer) -> None:
    app.command()(loadtest)
