"""`eventpro replay`: the incident's load against each strategy in turn, on one backend.

Each strategy gets a fresh database (a SQLite file, or a PostgreSQL schema and a Redis
key prefix), its own `eventpro serve --strategy S` process and the same event; the load
generator plays the same scenario against it. Afterwards the stored data is audited
(the same `audit_event` as `eventpro audit`), so the invariants a strategy broke come
from the database, never from what the client believes. The machine's ceiling (a bare
Starlette endpoint, closed loop, the same connections) is measured in the same run.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from eventpro.bootstrap import Servers, Tier, bootstrap, fresh_backends
from eventpro.config import Settings
from eventpro.domain.model import Strategy
from eventpro.loadtest.client import (
    closed_loop,
    create_event,
    get_json,
    one_section_event,
    one_ticket_buyers,
)
from eventpro.loadtest.http import run
from eventpro.loadtest.process import (
    free_port,
    peak_rss_mib,
    served,
    served_baseline,
    worker_process,
)
from eventpro.loadtest.report import Ceiling, StrategyRun, write_report
from eventpro.loadtest.results import Counters, LoadResult
from eventpro.loadtest.run import run_load
from eventpro.loadtest.scenario import Scenario
from eventpro.services.audit import AuditReport, audit_event, pages

Progress = Callable[[Counters, int], None]
SETTLE_TIMEOUT = 300.0  # seconds the queue may take to decide its backlog after the load


@dataclass(frozen=True)
class ReplayPlan:
    """What to replay: each strategy on fresh backends of `tier` (files in `workdir`)."""

    tier: Tier
    servers: Servers
    workdir: Path
    strategies: Sequence[Strategy]
    scenario: Scenario
    tickets: int
    pool_size: int = 150
    workers: int = 1  # worker loops of the queued strategy's worker process
    ceiling_s: float = 5.0  # seconds of the closed loop that measures the ceiling


def replay(
    plan: ReplayPlan,
    out: Path,
    command: str,
    say: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> tuple[list[StrategyRun], Ceiling, Path]:
    """Run every strategy of the plan, then the ceiling; write the report into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for strategy in plan.strategies:
        say(f"replay: {strategy} on {plan.tier.value}")
        runs.append(run_strategy(plan, strategy, out, progress))
    say("replay: the ceiling (a bare Starlette endpoint)")
    ceiling = measure_ceiling(plan.scenario.connections, out, plan.ceiling_s)
    scenario = plan.scenario
    title = (
        f"Flash-sale replay: {scenario.buyers:,} buyers for {plan.tickets:,} tickets"
        f" on {plan.tier.value}"
    )
    page = write_report(runs, ceiling, out, title, command)
    (out / "replay.json").write_bytes(
        orjson.dumps(
            {
                "title": title,
                "command": command,
                "ceiling": {"description": ceiling.description, "rate": ceiling.requests_per_s},
                "runs": [
                    {"strategy": r.strategy, "summary": r.summary, "broken": r.broken} for r in runs
                ],
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
        )
    )
    return runs, ceiling, page


def run_strategy(
    plan: ReplayPlan, strategy: Strategy, out: Path, progress: Progress | None
) -> StrategyRun:
    """One strategy: serve it on fresh data, play the scenario, audit what was stored."""
    token = secrets.token_urlsafe(24)
    with fresh_backends(plan.tier, plan.servers, plan.workdir) as backends:
        database_url = backends.database_url
        # a synchronous strategy keeps no line
        queue_url = backends.queue_url if strategy is Strategy.QUEUED else "memory://"
        env = {
            "EVENTPRO_DATABASE_URL": database_url,
            "EVENTPRO_QUEUE_URL": queue_url,
            "EVENTPRO_ADMIN_TOKEN": token,
            "EVENTPRO_STRATEGY": strategy.value,
            "EVENTPRO_POOL_SIZE": str(plan.pool_size),
            "EVENTPRO_WORKERS": "0",  # the queued strategy's workers run as their own process
        }
        env = {**_inherited_env(), **env}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        args = ["eventpro", "serve", "--port", str(port)]
        with contextlib.ExitStack() as processes:
            log = out / f"server-{strategy}.log"
            server = processes.enter_context(served(args, env, f"{base}/healthz", log))
            if strategy is Strategy.QUEUED:
                log = out / f"worker-{strategy}.log"
                processes.enter_context(worker_process(env, log, plan.workers))
            body = one_section_event(
                "The incident, replayed", plan.tickets, 9_000, 4, "Arena", "2030-06-01T20:00:00Z"
            )
            event_id = create_event(base, token, body)
            load = run_load(base, event_id, plan.scenario, progress=progress)
            if strategy is Strategy.QUEUED:
                _wait_settled(base, event_id)
            metrics = _metrics(base)
            rss = peak_rss_mib(server.pid)
        (out / f"load-{strategy}.json").write_bytes(orjson.dumps(load.to_json()))
        report, seats_twice = _audit(
            database_url, queue_url, event_id, strategy, load.acknowledged()
        )
    return _strategy_run(strategy, plan, load, report, seats_twice, metrics, rss, out)


def _strategy_run(
    strategy: Strategy,
    plan: ReplayPlan,
    load: LoadResult,
    report: AuditReport,
    seats_twice: int,
    metrics: dict[str, float],
    rss: float,
    out: Path,
) -> StrategyRun:
    numbers = load.summary()
    sold = int(report.counts.get("tickets_sold", 0))
    # from the stored data once every request is decided, as the audit counts it: the
    # API's stock, read while the last batch completes, can lag the orders by a moment
    remaining = max(0, plan.tickets - sold)
    refused = int(numbers.get("rejected", 0)) + int(numbers.get("errors", 0))
    summary: dict[str, float | int | str] = {
        "oversold tickets": max(0, sold - plan.tickets),
        "seats sold twice": seats_twice,
        "tickets sold": sold,
        "5xx": int(numbers.get("5xx", 0)),
        "timeouts": int(numbers.get("timeouts", 0)) + int(numbers.get("connection_errors", 0)),
        "pool waits": int(metrics.get("eventpro_pool_waited", 0)),
        "p50 answer ms": float(numbers.get("p50_first_answer_ms", math.nan)),
        "p99 answer ms": float(numbers.get("p99_first_answer_ms", math.nan)),
        "p50 decision ms": float(numbers.get("p50_decision_ms", math.nan)),
        "p99 decision ms": float(numbers.get("p99_decision_ms", math.nan)),
        "sold out after s": float(numbers.get("sold_out_after_s", math.nan)),
        "FCFS violations": _fcfs_violations(load),
        "unsold while demand remained": remaining if refused else 0,
        "offered req/s": float(numbers.get("offered_per_s", 0.0)),
        "requests/s": float(numbers.get("answered_per_s", 0.0)),
        "server peak RSS MiB": round(rss, 1),
        "database pool": "-" if strategy is Strategy.QUEUED else plan.pool_size,
    }
    broken = [f"{c.number} {c.name}" for c in report.checks if c.applies and not c.ok]
    return StrategyRun(
        strategy=strategy.value,
        backend=plan.tier.value,
        summary=summary,
        broken=broken,
        series=load.series(),
    )


def _fcfs_violations(load: LoadResult) -> int:
    """Buyers refused as sold out who first asked before a buyer who got tickets.

    Seen from the client: a refused buyer whose first request left more than
    `FCFS_SLACK` seconds before the last winner's first request was passed over.
    """
    firsts = load.first_sends()
    winners = [t for t, outcome in firsts if outcome == "confirmed"]
    if not winners:
        return 0
    last_winner = max(winners)
    return sum(
        1
        for t, outcome in firsts
        if outcome == "rejected:sold_out" and t < last_winner - FCFS_SLACK
    )


FCFS_SLACK = 0.1  # seconds: requests sent this close together may reach the server in any order


def measure_ceiling(connections: int, out: Path, duration: float = 5.0) -> Ceiling:
    """A bare Starlette `POST /hello` under a closed loop of `connections` connections."""
    with served_baseline(_inherited_env(), log=out / "server-ceiling.log") as (base, _):
        shots = one_ticket_buyers("/hello", 0, 2_000_000, "b")
        started = time.perf_counter()
        answers = run(closed_loop(base, shots, connections, duration=duration))
        elapsed = time.perf_counter() - started
    rate = sum(1 for a in answers if 200 <= a.status < 300) / elapsed
    return Ceiling(
        f"a bare Starlette endpoint (uvicorn, uvloop, httptools), {connections} connections,"
        f" closed loop for {duration:.0f} s",
        rate,
    )


def _wait_settled(base: str, event_id: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        event = get_json(f"{base}/v1/events/{event_id}")
        if isinstance(event, dict) and event["queue"]["depth"] == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the queue did not settle within {SETTLE_TIMEOUT:.0f} s")


def _metrics(base: str) -> dict[str, float]:
    """The server's unlabelled Prometheus samples (the pool counters among them)."""
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def _audit(
    database_url: str,
    queue_url: str,
    event_id: str,
    strategy: Strategy,
    acknowledged: set[str],
) -> tuple[AuditReport, int]:
    """The audit of the stored sale (every 202 the client got among it), and how many
    seats are in more than one order."""
    container = bootstrap(Settings(database_url=database_url, queue_url=queue_url))
    store = container.store
    try:
        synchronous = strategy is not Strategy.QUEUED
        report = audit_event(
            store,
            container.queue,
            event_id,
            synchronous=synchronous,
            acknowledged=None if synchronous else acknowledged,
        )
        assert report is not None, f"the event {event_id} is gone"
        seats = Counter(
            label
            for order in pages(lambda c: store.list_orders(event_id, 1000, c))
            for label in order.seats
        )
    finally:
        container.close()
    return report, sum(1 for n in seats.values() if n > 1)


def _inherited_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("EVENTPRO_")}
