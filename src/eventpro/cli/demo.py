"""`eventpro demo`: a simulated flash sale against a real server, then an audit.

By default on a temporary SQLite file; `--database-url`/`--queue-url` run it on any
backend (the cluster bench runs it on PostgreSQL + Redis).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from eventpro.bootstrap import Backends, bootstrap
from eventpro.cli.report import print_audit
from eventpro.config import Settings
from eventpro.loadtest.client import (
    Answer,
    Shot,
    closed_loop,
    create_event,
    get_json,
    one_section_event,
    percentile,
)
from eventpro.loadtest.http import run
from eventpro.loadtest.process import (
    free_port,
    peak_rss_mib,
    served,
    served_baseline,
    tree_total_peak_rss_mib,
    worker_process,
)
from eventpro.services.audit import AuditReport, audit_event, pages

console = Console()

CONNECTIONS = 256  # requests in flight: the demo's, its benchmark's and its yardstick's
API_PROCESSES = 2  # one per core of this 2-core machine


def demo(
    buyers: Annotated[
        int, typer.Option(envvar="EVENTPRO_DEMO_BUYERS", min=1, max=1_000_000)
    ] = 50_000,
    tickets: Annotated[int, typer.Option(envvar="EVENTPRO_DEMO_TICKETS", min=1)] = 10_000,
    connections: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "--connections",
            envvar=["EVENTPRO_DEMO_CONCURRENCY", "EVENTPRO_DEMO_CONNECTIONS"],
            min=1,
            max=2_000,
            help="requests in flight (one keep-alive connection each)",
        ),
    ] = CONNECTIONS,
    keep: Annotated[
        bool, typer.Option(envvar="EVENTPRO_DEMO_KEEP", help="keep the SQLite file and server log")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(envvar="EVENTPRO_DEMO_REPORT", help="also write it as JSON")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="EVENTPRO_DEMO_DATABASE_URL", help="default: a temporary SQLite file"),
    ] = None,
    queue_url: Annotated[
        str | None, typer.Option(envvar="EVENTPRO_DEMO_QUEUE_URL", help="default: the database")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            envvar="EVENTPRO_DEMO_WORKERS", min=1, max=64, help="loops of the worker process"
        ),
    ] = 1,
    processes: Annotated[
        int, typer.Option(envvar="EVENTPRO_DEMO_PROCESSES", min=1, max=64, help="API processes")
    ] = API_PROCESSES,
) -> None:
    """Sell TICKETS to BUYERS over real HTTP on loopback, then audit the stored data."""
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-demo-"))
    database = database_url or f"sqlite:///{workdir / 'demo.db'}"
    backends = Backends(database, queue_url or database)
    sale = sell(backends, buyers, tickets, connections, workdir, workers, processes)
    ok = _report(backends, sale, report)
    if not keep:
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()
    if not ok:
        raise typer.Exit(1)


@dataclass
class Sale:
    event_id: str
    answers: list[Answer]
    started: float  # time.time() when the first buyer was sent
    settled_in: float  # seconds from the last answer until every request was decided
    server_rss: float  # MiB, the API's processes together
    worker_rss: float  # MiB, the worker process


def sell(
    backends: Backends,
    buyers: int,
    tickets: int,
    connections: int,
    workdir: Path,
    workers: int = 1,
    processes: int = API_PROCESSES,
) -> Sale:
    """Serve the backends, create a sale of TICKETS and send BUYERS to it; wait for all.

    The API (`serve --processes N --workers 0`, by default a process per core of this
    2-core machine) and the workers (`eventpro worker`) run as separate processes, as
    they would in production: one interpreter lock per process, so answering and deciding
    do not take turns on one core."""
    token = secrets.token_urlsafe(24)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "EVENTPRO_DATABASE_URL": backends.database_url,
        "EVENTPRO_QUEUE_URL": backends.queue_url,
        "EVENTPRO_ADMIN_TOKEN": token,
    }
    console.print(f"demo: admin token for this run: [bold]{token}[/]  (files in {workdir})")
    args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
    args += ["--processes", str(processes)]
    with (
        served(args, env, f"{base}/healthz", workdir / "server.log") as server,
        worker_process(env, workdir / "worker.log", workers) as worker,
    ):
        event_id = _new_event(base, token, tickets)
        answers, started = _sell(base, event_id, buyers, connections)
        settled_in = _wait_until_decided(base, event_id, timeout=120)
        server_rss = tree_total_peak_rss_mib(server.pid)
        worker_rss = peak_rss_mib(worker.pid)
    return Sale(event_id, answers, started, settled_in, server_rss, worker_rss)


def baseline_answered_within(
    buyers: int, connections: int = CONNECTIONS, processes: int = API_PROCESSES
) -> float:
    """Seconds for the same client to get `buyers` answers from a bare Starlette endpoint
    (`loadtest/baseline.py`, as many processes as the demo's API): the demo's yardstick
    on a machine whose speed changes from hour to hour."""
    with served_baseline(dict(os.environ), processes) as (base, _):
        answers, _ = _sell(base, "evt_baseline", buyers, connections)
    if any(a.status != 202 for a in answers):
        raise RuntimeError("the bare endpoint answered something other than 202")
    return answered_within(answers)


def answered_within(answers: Sequence[Answer]) -> float:
    """Seconds from the first request sent to the last answer received."""
    first_sent = min((a.sent_at for a in answers), default=0.0)
    return max((a.sent_at + a.latency for a in answers), default=0.0) - first_sent


def _new_event(base: str, token: str, tickets: int) -> str:
    body = one_section_event(
        "EventPro demo: the flash sale", tickets, 12_500, 4, "Loopback Arena",
        "2030-06-01T19:00:00Z",
    )  # fmt: skip
    return create_event(base, token, body)


def _sell(base: str, event_id: str, buyers: int, connections: int) -> tuple[list[Answer], float]:
    shots = [
        Shot(
            f"/v1/events/{event_id}/purchases",
            {"buyer_id": f"buyer{i}", "quantity": 1, "section": "Floor"},
        )
        for i in range(buyers)
    ]
    columns = (
        TextColumn("[bold]buyers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("buyers", total=buyers)
        started = time.time()
        answers = run(
            closed_loop(
                base,
                shots,
                connections,
                keep_body=True,
                on_answer=lambda answer: _tick(progress, task, answer),
            )
        )
        progress.update(task, completed=buyers)
    return answers, started


def _tick(progress: Progress, task: TaskID, answer: Answer) -> None:
    # Redrawing costs the client CPU it needs to send: advance in steps of 250.
    if answer.index % 250 == 0:
        progress.update(task, completed=answer.index + 1)


def _wait_until_decided(base: str, event_id: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        event = get_json(f"{base}/v1/events/{event_id}")
        if isinstance(event, dict) and event["queue"]["depth"] == 0:
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"requests still undecided after {timeout} s")


def acknowledged(sale: Sale) -> set[str]:
    """The purchase ids the server answered 202 for: the audit checks each is kept."""
    return {orjson.loads(a.body)["purchase_id"] for a in sale.answers if a.status == 202}


def sale_numbers(backends: Backends, sale: Sale) -> tuple[dict[str, Any], AuditReport]:
    """The sale's outcome as numbers, from the stored data (the audit), not the client."""
    container = bootstrap(
        Settings(database_url=backends.database_url, queue_url=backends.queue_url)
    )
    try:
        audit = audit_event(
            container.store, container.queue, sale.event_id, acknowledged=acknowledged(sale)
        )
        orders = list(pages(lambda c: container.store.list_orders(sale.event_id, 1000, c)))
    finally:
        container.close()
    assert audit is not None
    statuses = Counter(a.status for a in sale.answers)
    latencies = [a.latency for a in sale.answers if a.status == 202]
    started = datetime.fromtimestamp(sale.started, UTC)
    last_order = max((o.created_at for o in orders), default=None)
    answered_in = answered_within(sale.answers)
    numbers = {
        **audit.counts,
        "buyers": len(sale.answers),
        "answered_202": statuses.get(202, 0),
        "other_answers": {str(k): v for k, v in statuses.items() if k != 202},
        "rejected_at_once": sum(
            orjson.loads(a.body)["status"] == "rejected" for a in sale.answers if a.status == 202
        ),
        "oversold": max(0, audit.counts["tickets_sold"] - audit.counts["capacity"]),
        "fcfs_ok": audit.checks[3].ok,
        "fcfs_detail": audit.checks[3].detail,
        "audit_ok": audit.ok,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "sell_out_s": (last_order - started).total_seconds() if last_order else float("nan"),
        "settled_after_last_answer_s": sale.settled_in,
        # the targets of `make demo`: every buyer answered within 5 s of the first request,
        # every request decided within 10 s, the server's peak RSS at most 250 MB
        "all_answered_within_s": answered_in,
        "all_decided_within_s": answered_in + sale.settled_in,
        "total_s": time.time() - sale.started,
        "server_peak_rss_mib": sale.server_rss,
        "worker_peak_rss_mib": sale.worker_rss,
    }
    return numbers, audit


def _report(backends: Backends, sale: Sale, json_path: Path | None) -> bool:
    n, audit = sale_numbers(backends, sale)
    table = Table(title="EventPro demo: flash sale report")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("buyers (requests sent)", f"{n['buyers']:,}"),
        ("answered 202", f"{n['answered_202']:,}"),
        ("other answers", str(n["other_answers"] or "none")),
        ("rejected at once (sold out, in the answer)", f"{n['rejected_at_once']:,}"),
        ("tickets", f"{n['capacity']:,}"),
        ("confirmed purchases", f"{n.get('confirmed', 0):,}"),
        ("rejected: sold_out", f"{n.get('rejected_sold_out', 0):,}"),
        ("rejected: other reasons", f"{_other_rejections(audit.counts):,}"),
        ("oversold tickets", f"{n['oversold']}"),
        ("FCFS violations", n["fcfs_detail"].split()[0]),
        ("admission latency p50 / p99", f"{n['p50_ms']:.1f} / {n['p99_ms']:.1f} ms"),
        ("time to sell out", f"{n['sell_out_s']:.2f} s"),
        ("all decided after the last answer", f"{n['settled_after_last_answer_s']:.2f} s"),
        ("every buyer answered within (target 5 s)", f"{n['all_answered_within_s']:.2f} s"),
        ("every request decided within (target 10 s)", f"{n['all_decided_within_s']:.2f} s"),
        ("total time", f"{n['total_s']:.2f} s"),
        ("server peak RSS (target 250 MB)", f"{n['server_peak_rss_mib']:.0f} MiB"),
        ("worker peak RSS", f"{n['worker_peak_rss_mib']:.0f} MiB"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    print_audit(console, audit)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(n, option=orjson.OPT_INDENT_2))
    return audit.ok and bool(n["answered_202"] == n["buyers"])


def _other_rejections(counts: dict[str, int]) -> int:
    return sum(
        v for k, v in counts.items() if k.startswith("rejected_") and k != "rejected_sold_out"
    )
