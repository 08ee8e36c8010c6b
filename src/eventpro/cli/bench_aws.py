"""`eventpro bench --backend aws`: a general-admission sale on DynamoDB, call by call.

The bench starts the AWS emulator (moto, one call at a time, every call counted by
operation; `eventpro.loadtest.emulator`) on a free loopback port, or uses a given
endpoint or the account of the standard AWS chain. On fresh tables it runs one API
process (`eventpro serve --workers 0`) and, in phases:

1. admission: every buyer POSTs once (closed loop); nobody decides yet, so every request
   that is not refused at once reaches the line (the slow-workers bound of a sale);
2. decisions: a worker loop in this process decides the whole line, as a worker does;
3. polls: every buyer answered 202 asks for its purchase once (`GET /v1/purchases/{id}`);
4. after the sell-out: more buyers POST, and are refused at once by the sold-out flag;
5. the emulator's own rate for the same calls: the mix of operations (and items per
   call) counted in phases 1 and 2, replayed by a bare boto3 loop on the same endpoint
   and table. On the emulator the emulator is the limit, not EventPro: the ratios say how
   close EventPro comes to it.

The call counts give the cost of a real sale (`cost`): see docs/aws.md.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from eventpro.bootstrap import Servers, Tier, bare_calls, bootstrap, fresh_backends
from eventpro.cli import bench_aws_cost
from eventpro.cli.report import write_results
from eventpro.config import Settings
from eventpro.loadtest.client import (
    Answer,
    Shot,
    closed_loop,
    create_event,
    one_section_event,
    one_ticket_buyers,
    percentile,
)
from eventpro.loadtest.emulator import Counts, EmulatorMissing, counts, dynamodb_service
from eventpro.loadtest.http import run
from eventpro.loadtest.process import free_port, peak_rss_mib, served
from eventpro.ports import Clock
from eventpro.services.decisions import decide_streak
from eventpro.worker.loop import overlap_thread

CALLS_TARGET = 2.0  # AWS calls per general-admission purchase, admission to decision
EMULATOR_TIMEOUT = 120.0  # seconds a request may wait: the emulator serves one at a time
BARE_THREADS = 4
console = Console()


@dataclass(frozen=True)
class Plan:
    buyers: int
    tickets: int
    connections: int
    batch_size: int
    endpoint: str  # "" (start the emulator), an emulator's URL, or "account"
    after_sell_out: int  # buyers who arrive once the sale is sold out


def measure(plan: Plan, workdir: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the phases of the module docstring; the results as JSON-ready numbers."""
    with contextlib.ExitStack() as stack:
        service = stack.enter_context(dynamodb_service(plan.endpoint))
        endpoint, emulator = service.endpoint, service.emulator
        say(f"bench aws: {'the emulator at ' + endpoint if endpoint else 'the AWS account'}")
        servers = Servers(dynamodb_url=service.url)
        backends = stack.enter_context(fresh_backends(Tier.AWS, servers, workdir))
        token = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "EVENTPRO_DATABASE_URL": backends.database_url,
            "EVENTPRO_QUEUE_URL": backends.queue_url,
            "EVENTPRO_ADMIN_TOKEN": token,
            "EVENTPRO_BATCH_SIZE": str(plan.batch_size),
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
        server = stack.enter_context(served(args, env, f"{base}/healthz", workdir / "api.log"))
        count = _Counter(endpoint)
        event_id = create_event(
            base, token, one_section_event("bench aws", plan.tickets, 5000, 4, "Cloud Hall")
        )
        phases = _phases(plan, base, event_id, backends.database_url, count, say)
        rss = {"api_server": round(peak_rss_mib(server.pid), 1)}
        if emulator is not None:
            rss["emulator"] = round(emulator.peak_rss_mib(), 1)
    rss["bench (load generator and worker loop)"] = round(_own_peak_rss_mib(), 1)
    return _results(plan, endpoint, emulator is not None, phases, rss)


class _Counter:
    """The emulator's counts around a phase (none against an account or another endpoint)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.found: dict[str, Counts] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before = self._now()
        yield
        after = self._now()
        if before is not None and after is not None:
            self.found[name] = after - before

    def _now(self) -> Counts | None:
        if not self.endpoint:
            return None
        try:
            return counts(self.endpoint)
        except (OSError, KeyError, ValueError):  # not our emulator: no counts
            return None


def _phases(
    plan: Plan,
    base: str,
    event_id: str,
    url: str,
    count: _Counter,
    say: Callable[[str], None],
) -> dict[str, Any]:
    path = f"/v1/events/{event_id}/purchases"
    say(f"bench aws: admission of {plan.buyers:,} buyers")
    with count.phase("admission"):
        admitted = _send(base, one_ticket_buyers(path, 0, plan.buyers, "aws"), plan.connections)
    say("bench aws: decisions")
    with count.phase("decisions"):
        decisions = _decide(url, plan.batch_size)
    ids = [orjson.loads(a.body)["purchase_id"] for a in admitted if a.status == 202]
    say(f"bench aws: {len(ids):,} polls")
    with count.phase("polls"):
        polls = _send(base, [Shot(f"/v1/purchases/{i}") for i in ids], plan.connections)
    say(f"bench aws: {plan.after_sell_out:,} buyers after the sell-out")
    with count.phase("after_sell_out"):
        late = _send(
            base, one_ticket_buyers(path, plan.buyers, plan.after_sell_out, "aws"), plan.connections
        )
    results = {
        "admission": _rate(admitted, 202),
        "decisions": decisions,
        "polls": _rate(polls, 200),
        "after_sell_out": _rate(late, 202),
        "statuses_after_decisions": _statuses(polls),
    }
    results["calls"] = {name: vars(found) for name, found in count.found.items()}
    if "admission" in count.found and "decisions" in count.found:
        say("bench aws: the emulator's own rate for the same calls")
        results["bare"] = {
            "admission": _bare(url, count.found["admission"], plan.buyers),
            "decisions": _bare(url, count.found["decisions"], plan.buyers),
        }
    return results


def _send(base: str, shots: list[Shot], connections: int) -> list[Answer]:
    return run(closed_loop(base, shots, connections, keep_body=True, timeout=EMULATOR_TIMEOUT))


def _rate(answers: Sequence[Answer], ok_status: int) -> dict[str, Any]:
    """Good answers per second over the span of the answers, and their latency."""
    good = [a for a in answers if a.status == ok_status]
    if not answers:
        return {"requests": 0, "seconds": 0.0, "rate": 0.0, "errors": 0}
    seconds = max(a.sent_at + a.latency for a in answers) - min(a.sent_at for a in answers)
    latencies = [a.latency for a in good]
    return {
        "requests": len(good),
        "seconds": round(seconds, 3),
        "rate": round(len(good) / seconds, 1) if seconds else 0.0,
        "errors": len(answers) - len(good),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else None,
    }


def _statuses(polls: Sequence[Answer]) -> dict[str, int]:
    found: dict[str, int] = {}
    for answer in polls:
        if answer.status == 200:
            status = str(orjson.loads(answer.body)["status"])
            found[status] = found.get(status, 0) + 1
    return found


def _decide(url: str, batch_size: int) -> dict[str, Any]:
    """Decide the whole line in this process, as a worker does (same policy)."""
    container = bootstrap(Settings(database_url=url, queue_url=url, batch_size=batch_size))
    decided = confirmed = 0
    started = time.perf_counter()
    try:
        with overlap_thread(container.policy) as overlap:
            while (
                result := decide_streak(
                    container.store, container.queue, Clock(), container.policy, overlap
                )
            ).leased:
                decided += result.decided
                confirmed += result.confirmed
    finally:
        container.close()
    seconds = time.perf_counter() - started
    return {
        "decided": decided,
        "confirmed": confirmed,
        "seconds": round(seconds, 3),
        "rate": round(decided / seconds, 1) if seconds else 0.0,
        "batch_size": batch_size,
    }


def _bare(url: str, found: Counts, purchases: int) -> dict[str, Any]:
    """The same mix of calls, per purchase, as a bare loop: purchases per second."""
    requests = min(purchases, 1_000)
    calls = [
        (op, round(found.items.get(op, 0) / n))
        for op, n in found.calls.items()
        for _ in range(round(n * requests / purchases))
    ]
    random.Random(7).shuffle(calls)
    seconds = bare_calls(url, calls, BARE_THREADS)
    return {
        "purchases": requests,
        "calls": len(calls),
        "seconds": round(seconds, 3),
        "rate": round(requests / seconds, 1) if seconds else 0.0,
        "threads": BARE_THREADS,
    }


def _own_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _results(
    plan: Plan, endpoint: str, emulated: bool, phases: dict[str, Any], rss: dict[str, float]
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "backend": "aws",
        "command": shlex.join(["eventpro", *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "service": "the emulator (moto, one call at a time)" if emulated else endpoint or "AWS",
        "machine": {"cpus": os.cpu_count(), "connections": plan.connections},
        "buyers": plan.buyers,
        "tickets": plan.tickets,
        **phases,
        "peak_rss_mib": rss,
    }
    calls = phases["calls"]
    if "admission" in calls and "decisions" in calls:
        per = bench_aws_cost.per_purchase(calls, plan.buyers, plan.after_sell_out)
        results["calls_per_purchase"] = per
        results["cost"] = bench_aws_cost.sale_cost(
            calls, plan.buyers, plan.tickets, plan.after_sell_out
        )
        results["target"] = {"calls_per_purchase": CALLS_TARGET}
        results["pass"] = {"calls_per_purchase": per["sale"]["all"] <= CALLS_TARGET}
    if bare := phases.get("bare"):
        results["ratios"] = {
            name: round(phases[name]["rate"] / bare[name]["rate"], 3) if bare[name]["rate"] else 0
            for name in ("admission", "decisions")
        }
    return results


def main(quick: bool, connections: int, batch_size: int, endpoint: str, out: Path) -> None:
    """`eventpro bench --backend aws`: measure, print a table, write `aws.json` in OUT."""
    # moto copies the tables a transaction touches, so its time per transaction grows with
    # the run: 10,000 buyers took 13 minutes, mostly moto copying
    buyers = 1_000 if quick else 5_000
    plan = Plan(buyers, buyers // 10, min(connections, 64), batch_size, endpoint, buyers // 10)
    with tempfile.TemporaryDirectory(prefix="eventpro-bench-aws-") as workdir:
        try:
            results = measure(plan, Path(workdir), say=console.print)
        except EmulatorMissing as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
    path = out / "aws.json"
    write_results(results, path)
    console.print(table(results))
    console.print(f"written to {path}")


def table(results: dict[str, Any]) -> Table:
    """The results as the other bench modes show theirs."""
    title = f"eventpro bench aws: {results['buyers']:,} buyers, {results['tickets']:,} tickets"
    out = Table(title=f"{title} ({results['service']})")
    for column in ("measure", "value", "target", "result"):
        out.add_column(column)
    if per := results.get("calls_per_purchase"):
        _calls_rows(out, per, results["pass"]["calls_per_purchase"])
    bare = results.get("bare", {})
    for name in ("admission", "decisions"):
        ours = results[name]["rate"]
        row = f"{name}: purchases/s"
        if name in bare:
            ratio = results["ratios"][name]
            value = (
                f"{ours:,.0f} /s; the same calls bare: {bare[name]['rate']:,.0f} /s ({ratio:.0%})"
            )
        else:
            value = f"{ours:,.0f} /s"
        out.add_row(row, value, "", "")
    polls = results["polls"]
    out.add_row(
        "polls: GET a purchase", f"{polls['rate']:,.0f} /s, p99 {polls['p99_ms']} ms", "", ""
    )
    rss = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in results["peak_rss_mib"].items())
    out.add_row("peak RSS", rss, "", "")
    if cost := results.get("cost"):
        sale = cost["sale"]
        slow, fast = cost["slow_workers"]["usd"], cost["fast_workers"]["usd"]
        out.add_row(
            f"cost: {sale['tickets']:,} tickets, {sale['buyers']:,} buyers, on demand",
            f"${fast:,.2f} (sell-out flagged at once) to ${slow:,.2f} (all in line)",
            "",
            f"{cost['assumed']['region']} prices",
        )
    return out


def _calls_rows(out: Table, per: dict[str, dict[str, float]], passed: bool) -> None:
    sale = per["sale"]
    kinds = ", ".join(f"{op} {k}" for op, k in sale.items() if op != "all")
    verdict = "[green]PASS[/]" if passed else "[red]MISS[/]"
    out.add_row(
        "AWS calls per purchase (admission to decision)",
        f"{sale['all']}",
        f"<= {CALLS_TARGET}",
        verdict,
    )
    out.add_row("  by kind", kinds, "", "")
    for name, label in (
        ("poll", "calls per poll"),
        ("refused_at_once", "calls per buyer refused at once"),
    ):
        if name in per:
            out.add_row(label, f"{per[name]['all']}", "", "")
