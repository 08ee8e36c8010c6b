"""`eventpro replay`: the incident, against each strategy in turn, with a report."""

from __future__ import annotations

import contextlib
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eventpro.bootstrap import Servers, Tier, max_connections
from eventpro.cli.loadtest import scenario_from_options
from eventpro.domain.model import Strategy
from eventpro.loadtest.emulator import dynamodb_service
from eventpro.loadtest.replay import ReplayPlan, replay
from eventpro.loadtest.report import Ceiling, StrategyRun, share_of_ceiling

console = Console()


# connections a pool may not take from the server: the store's pools, the audit, psql
RESERVED_CONNECTIONS = 25


def replay_command(
    backend: Annotated[Tier, typer.Option(envvar="EVENTPRO_REPLAY_BACKEND")] = Tier.SQLITE,
    strategies: Annotated[
        str, typer.Option(help="comma-separated, in the order they run")
    ] = "naive,locking,conditional,queued",
    buyers: Annotated[int, typer.Option(min=1, help="buyers in the sale")] = 50_000,
    duration: Annotated[float, typer.Option(min=0.1, help="seconds over which they arrive")] = 30.0,
    tickets: Annotated[int, typer.Option(min=1, help="tickets on sale")] = 10_000,
    scenario_file: Annotated[
        Path | None,
        typer.Option("--scenario", help="a scenario TOML file (default: the incident preset)"),
    ] = None,
    connections: Annotated[int | None, typer.Option(help="client connections")] = None,
    processes: Annotated[int | None, typer.Option(help="client processes")] = None,
    pool_size: Annotated[
        int, typer.Option(min=1, help="database connections of each synchronous strategy")
    ] = 150,
    postgres_url: Annotated[str, typer.Option(envvar="EVENTPRO_REPLAY_POSTGRES_URL")] = (
        "postgresql://postgres@127.0.0.1:5432/test"
    ),
    redis_url: Annotated[str, typer.Option(envvar="EVENTPRO_REPLAY_REDIS_URL")] = (
        "redis://127.0.0.1:6379/0"
    ),
    mysql_url: Annotated[str, typer.Option(envvar="EVENTPRO_REPLAY_MYSQL_URL")] = (
        "mysql://root@127.0.0.1:3306/test"
    ),
    aws_endpoint: Annotated[
        str,
        typer.Option(
            envvar="EVENTPRO_REPLAY_AWS_ENDPOINT",
            help="--backend aws: an emulator's URL, or `account` (the standard AWS chain);"
            " default: start the emulator",
        ),
    ] = "",
    ceiling_seconds: Annotated[
        float, typer.Option(min=0.5, help="seconds of the closed loop measuring the ceiling")
    ] = 5.0,
    out: Annotated[Path, typer.Option(help="folder of the report")] = Path("replay-report"),
) -> None:
    """Replay the flash-sale incident against each strategy on one backend; write a report.

    Every strategy gets fresh data, its own server and the same load; `eventpro audit`'s
    checks run on what each one stored. The report (a table, four plots, one HTML page)
    also shows the machine's ceiling, a bare Starlette endpoint measured in the same run.
    """
    try:
        chosen = [Strategy(name.strip()) for name in strategies.split(",") if name.strip()]
    except ValueError as exc:
        valid = ", ".join(s.value for s in Strategy)
        raise typer.BadParameter(f"{exc}; strategies: {valid}", param_hint="--strategies") from exc
    if backend is Tier.AWS:
        chosen = _applying_on_aws(chosen)
    scenario = scenario_from_options(
        scenario_file,
        None if scenario_file else "incident",
        buyers=buyers,
        **{"arrival.duration_s": duration},
        connections=connections,
        processes=processes,
    )
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="eventpro-replay-"))
        dynamodb_url = ""
        if backend is Tier.AWS:
            dynamodb_url = stack.enter_context(dynamodb_service(aws_endpoint)).url
        servers = Servers(postgres_url, redis_url, mysql_url, dynamodb_url)
        database_server = {Tier.POSTGRES: postgres_url, Tier.MARIADB: mysql_url}.get(backend)
        allowed = max_connections(database_server) if database_server else None
        if allowed is not None and pool_size > allowed - RESERVED_CONNECTIONS:
            pool_size = max(1, allowed - RESERVED_CONNECTIONS)
            console.print(f"{backend} takes {allowed} connections: pools of {pool_size}")
        plan = ReplayPlan(
            tier=backend,
            servers=servers,
            workdir=Path(workdir),
            strategies=chosen,
            scenario=scenario,
            tickets=tickets,
            pool_size=pool_size,
            ceiling_s=ceiling_seconds,
        )
        command = shlex.join(["eventpro", "replay", *sys.argv[2:]])
        runs, ceiling, page = replay(plan, out, command, say=console.print)
    print_table(runs, ceiling)
    console.print(f"report: {page}")
    naive = [r for r in runs if r.strategy == Strategy.NAIVE]
    others = [r for r in runs if r.strategy != Strategy.NAIVE]
    if any(r.summary["oversold tickets"] for r in others) or any(r.broken for r in others):
        console.print("[bold red]a strategy other than naive broke an invariant[/]")
        raise typer.Exit(1)
    if naive and not naive[0].summary["oversold tickets"]:
        console.print("naive did not oversell this time: the load was too light to race")


def _applying_on_aws(chosen: list[Strategy]) -> list[Strategy]:
    """The strategies that run on DynamoDB: the queued one. The synchronous three are
    built as sellers over a SQL database (`adapters/synchronous.py`): `locking` needs
    SELECT … FOR UPDATE, which DynamoDB has not, and `naive`'s incident is a pool of
    database connections running dry, which DynamoDB has not either. `conditional` would
    map to one conditional UpdateItem per request, but no DynamoDB seller is built."""
    left_out = [s.value for s in chosen if s is not Strategy.QUEUED]
    if Strategy.QUEUED not in chosen:
        raise typer.BadParameter("on aws only the queued strategy runs", param_hint="--strategies")
    if left_out:
        console.print(
            f"aws: {', '.join(left_out)} left out: they are sellers over a SQL database"
            " (row locks, a connection pool); a conditional seller on DynamoDB is not built"
        )
    return [Strategy.QUEUED]


def print_table(runs: list[StrategyRun], ceiling: Ceiling) -> None:
    table = Table(title=f"replay (ceiling {ceiling.requests_per_s:,.0f} requests/s)")
    table.add_column("measure")
    for run in runs:
        table.add_column(run.strategy, justify="right")
    for key in dict.fromkeys(k for run in runs for k in run.summary):
        table.add_row(key, *(_cell(run.summary.get(key, "")) for run in runs))
    table.add_row("share of ceiling", *(f"{share_of_ceiling(r, ceiling):.0%}" for r in runs))
    table.add_row("invariants broken", *(", ".join(r.broken) or "none" for r in runs))
    console.print(table)


def _cell(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)
