"""`eventpro bench`: admission and decision speed, against a bare Starlette baseline.

Everything is measured in one run on this machine, with the same server (uvicorn,
uvloop, httptools), the same load generator and the same connections, so the ratios
mean something on a shared, noisy machine where absolute numbers do not.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from eventpro.bootstrap import Backends, Servers, Tier, bootstrap, fresh_backends
from eventpro.cli import bench_loadgen, bench_polls, bench_store, bench_streams, demo
from eventpro.config import Settings
from eventpro.loadtest.client import (
    Answer,
    Shot,
    closed_loop,
    create_event,
    get_json,
    open_loop,
    percentile,
)
from eventpro.loadtest.http import run
from eventpro.loadtest.process import free_port, peak_rss_mib, served, uvicorn_args
from eventpro.ports import Clock
from eventpro.services.decisions import decide_streak
from eventpro.worker.loop import overlap_thread

console = Console()
TARGETS = {"admission_ratio": 0.5, "p99_ms_at_half_load": 50.0, "decisions_ratio": 0.5}
# Cluster baselines: a Starlette endpoint with one Redis round trip; bare batched UPDATEs.
CLUSTER_TARGETS = {"admission_ratio": 0.5, "decisions_ratio": 0.5}
WARM_UP = 2_000  # requests sent before measuring


def _rate(answers: Sequence[Answer], ok_status: int) -> dict[str, float]:
    """Good answers per second over the span of the measured answers."""
    if not answers:
        return {"requests": 0, "seconds": 0.0, "rate": 0.0, "errors": 0}
    first = min(a.sent_at for a in answers)
    last = max(a.sent_at + a.latency for a in answers)
    good = sum(1 for a in answers if a.status == ok_status)
    seconds = last - first
    return {
        "requests": good,
        "seconds": round(seconds, 3),
        "rate": round(good / seconds, 1) if seconds else 0.0,
        "errors": len(answers) - good,
    }


def _closed(base: str, shots: list[Shot], connections: int, duration: float) -> list[Answer]:
    warm_up = min(WARM_UP, len(shots) // 4)
    run(closed_loop(base, shots[:warm_up], connections))
    return run(closed_loop(base, shots[warm_up:], connections, duration=duration))


def _buyers(path: str, start: int, count: int) -> list[Shot]:
    return [
        Shot(path, {"buyer_id": f"bench{i}", "section": "Floor", "quantity": 1})
        for i in range(start, start + count)
    ]


def _baseline(
    env: dict[str, str], connections: int, duration: float, count: int, path: str = "/hello"
) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = uvicorn_args("eventpro.loadtest.baseline:app", port)
    with served(args, env, f"{base}/healthz") as process:
        answers = _closed(base, _buyers(path, 0, count), connections, duration)
        return {**_rate(answers, 202), "server_peak_rss_mib": round(peak_rss_mib(process.pid), 1)}


def _admission(
    env: dict[str, str], connections: int, duration: float, count: int
) -> dict[str, Any]:
    """Max admission rate, then p99 latency at half that rate (open loop), API only."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
    with served(args, env, f"{base}/healthz") as process:
        body = {
            "name": "bench",
            "venue": "loopback",
            "starts_at": "2030-01-01T20:00:00Z",
            "sections": [{"name": "Floor", "capacity": 10_000_000, "price_cents": 100}],
        }
        event_id = create_event(base, env["EVENTPRO_ADMIN_TOKEN"], body)
        path = f"/v1/events/{event_id}/purchases"

        def memory() -> dict[str, float]:
            event = get_json(f"{base}/v1/events/{event_id}")
            depth = event["queue"]["depth"] if isinstance(event, dict) else 0
            return {"line": depth, "rss_mib": round(peak_rss_mib(process.pid, "VmRSS"), 1)}

        peak = _rate(_closed(base, _buyers(path, 0, count), connections, duration), 202)
        after_peak = memory()
        half = max(1.0, peak["rate"] / 2)
        paced = run(open_loop(base, _buyers(path, count, int(half * duration)), half, connections))
        latencies = [a.latency for a in paced if a.status == 202]
        return {
            "event_id": event_id,
            "max": peak,
            "half_load": {
                "offered_rate": round(half, 1),
                "answered": len(latencies),
                "errors": len(paced) - len(latencies),
                "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            },
            "server_peak_rss_mib": round(peak_rss_mib(process.pid), 1),
            # The backlog lives in the queue, not in the process: RSS must not follow the line.
            "memory_as_the_line_grows": [after_peak, memory()],
        }


def _decisions(backends: Backends, batch_size: int) -> dict[str, Any]:
    """Decide the whole line left by the admission run, in-process, as a worker does."""
    settings = Settings(
        database_url=backends.database_url, queue_url=backends.queue_url, batch_size=batch_size
    )
    container = bootstrap(settings)
    policy = container.policy  # as deployed
    decided = 0
    marks = [(time.perf_counter(), 0)]  # after each streak of batches: (time, decided so far)
    try:
        with overlap_thread(policy) as overlap:
            while (
                result := decide_streak(container.store, container.queue, Clock(), policy, overlap)
            ).leased:
                decided += result.decided
                marks.append((time.perf_counter(), decided))
    finally:
        container.close()
    return bench_store.rates(marks, batch_size)


def bench(
    duration: Annotated[float, typer.Option(envvar="EVENTPRO_BENCH_DURATION", min=0.5)] = 8.0,
    connections: Annotated[int, typer.Option(envvar="EVENTPRO_BENCH_CONNECTIONS", min=1)] = 128,
    batch_size: Annotated[int, typer.Option(envvar="EVENTPRO_BATCH_SIZE", min=1)] = 500,
    out: Annotated[Path, typer.Option(envvar="EVENTPRO_BENCH_OUT")] = Path(
        "bench-results/bench.json"
    ),
    backend: Annotated[
        str,
        typer.Option(
            envvar="EVENTPRO_BENCH_BACKEND",
            help="sqlite (embedded), postgres (cluster: PostgreSQL + Redis), mariadb or aws",
        ),
    ] = "sqlite",
    postgres_url: Annotated[
        str, typer.Option(envvar="EVENTPRO_BENCH_POSTGRES_URL")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
    redis_url: Annotated[str, typer.Option(envvar="EVENTPRO_BENCH_REDIS_URL")] = (
        "redis://127.0.0.1:6379/0"
    ),
    quick: Annotated[bool, typer.Option(help="tiny numbers: a smoke test of the bench")] = False,
    loadgen: Annotated[
        bool, typer.Option("--loadgen", help="measure the load generator against wrk instead")
    ] = False,
    processes: Annotated[
        int, typer.Option(min=1, max=32, help="client processes of --loadgen")
    ] = 2,
    polls: Annotated[
        int,
        typer.Option(
            min=0,
            max=10_000_000,
            help="measure a poll at the head and the tail of a line of this many instead",
        ),
    ] = 0,
    streams: Annotated[
        int,
        typer.Option(
            "--streams",
            min=0,
            max=20_000,
            help="measure this many open idle purchase streams instead (e.g. 10000)",
        ),
    ] = 0,
    aws_endpoint: Annotated[
        str,
        typer.Option(
            envvar="EVENTPRO_BENCH_AWS_ENDPOINT",
            help="--backend aws: an emulator's URL, or `account` (the standard AWS chain);"
            " default: start the emulator",
        ),
    ] = "",
) -> None:
    """Baseline vs admission throughput, p99 at half load, worker decisions per second."""
    if backend == "aws":  # its own module: DynamoDB is measured call by call
        from eventpro.cli import bench_aws

        bench_aws.main(quick, connections, batch_size, aws_endpoint, out)
        return
    if quick:
        duration, connections = 0.5, 8
    if loadgen:
        _loadgen(connections, duration, processes, out.with_name("loadgen.json"))
        return
    if polls:
        servers = Servers(postgres_url, redis_url)
        _polls(Tier.named(backend), servers, 2_000 if quick else polls, duration, out)
        return
    if streams:
        _streams(min(streams, 200) if quick else streams, quick, out.with_name("streams.json"))
        return
    count = 2_000 if quick else 400_000
    tier = Tier.named(backend)
    servers = Servers(postgres_url, redis_url)
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-bench-"))
    console.print(f"bench {tier}: {connections} connections, {duration} s per measure")
    try:
        with fresh_backends(tier, servers, workdir) as backends:
            env = {
                **os.environ,
                "EVENTPRO_DATABASE_URL": backends.database_url,
                "EVENTPRO_QUEUE_URL": backends.queue_url,
                "EVENTPRO_ADMIN_TOKEN": secrets.token_urlsafe(24),
                "EVENTPRO_BASELINE_REDIS_URL": redis_url,
            }
            path = "/hello" if tier is Tier.SQLITE else "/hello-redis"
            baseline = _baseline(env, connections, duration, count, path)
            admission = _admission(env, connections, duration, count)
            decisions = _decisions(backends, batch_size)
            ceiling = bench_store.store_ceiling(
                backends.database_url, max(decisions["decided"], batch_size), batch_size
            )
        sale = None
        if tier is not Tier.SQLITE:
            with fresh_backends(tier, servers, workdir) as backends:
                sale = _sale(backends, workdir, quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results: dict[str, Any] = {"backend": tier.value}
    results |= _summarise(tier, baseline, admission, decisions, connections, duration, ceiling)
    if sale is not None:
        results["sale"] = sale
        results["pass"]["sale"] = sale["ok"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    _print(results)
    console.print(f"written to {out}")


def _sale(backends: Backends, workdir: Path, quick: bool) -> dict[str, Any]:
    """The flash sale of the demo (50,000 buyers, 10,000 tickets) on these backends."""
    buyers, tickets = (2_000, 500) if quick else (50_000, 10_000)
    sold = demo.sell(backends, buyers, tickets, 256, workdir)
    n, _ = demo.sale_numbers(backends, sold)
    keep = ("buyers", "answered_202", "capacity", "tickets_sold", "oversold", "fcfs_ok")
    numbers = {k: n[k] for k in keep}
    numbers |= {k: round(n[k], 2) for k in ("sell_out_s", "settled_after_last_answer_s")}
    numbers |= {k: round(n[k], 2) for k in ("total_s", "p99_ms")}
    # every buyer answered 202, every request decided (or the audit fails), none oversold
    numbers["ok"] = n["answered_202"] == buyers and n["audit_ok"] and n["oversold"] == 0
    return numbers


def _summarise(
    tier: Tier,
    baseline: dict[str, Any],
    admission: dict[str, Any],
    decisions: dict[str, Any],
    connections: int,
    duration: float,
    ceiling: dict[str, Any],
) -> dict[str, Any]:
    ratio = admission["max"]["rate"] / baseline["rate"] if baseline["rate"] else 0.0
    # medians of windows of ~10,000 requests on both sides: a stall of this shared
    # machine (a checkpoint, a neighbour) then moves neither ratio much
    ours, theirs = decisions["median_window_rate"], ceiling["median_window_rate"]
    sell_through = ours / theirs if theirs else 0.0
    whole = decisions["rate"] / ceiling["rate"] if ceiling["rate"] else 0.0
    targets = TARGETS if tier is Tier.SQLITE else CLUSTER_TARGETS
    passed = {
        "admission_ratio": ratio >= targets["admission_ratio"],
        "decisions_ratio": sell_through >= targets["decisions_ratio"],
    }
    if tier is Tier.SQLITE:
        passed["p99_at_half_load"] = (
            admission["half_load"]["p99_ms"] <= TARGETS["p99_ms_at_half_load"]
        )
    return {
        "machine": {"cpus": os.cpu_count(), "connections": connections, "duration_s": duration},
        "baseline": baseline,
        "admission": admission,
        "decisions": decisions,
        "decisions_baseline": ceiling,
        "ratios": {
            "admission_vs_baseline": round(ratio, 3),
            "decisions_vs_bare_updates": round(sell_through, 3),
            "decisions_vs_bare_updates_whole_runs": round(whole, 3),
        },
        "targets": targets,
        "pass": passed,
    }


def _print(results: dict[str, Any]) -> None:
    table = Table(title=f"eventpro bench {results['backend']} (same machine, same run)")
    for column in ("measure", "value", "target", "result"):
        table.add_column(column)
    b, a, d, ok = results["baseline"], results["admission"], results["decisions"], results["pass"]
    floor = results["decisions_baseline"]
    cluster = results["backend"] != "sqlite"

    def verdict(name: str) -> str:
        if name not in ok:
            return ""
        return "[green]PASS[/]" if ok[name] else "[red]MISS[/]"

    what = "bare Starlette POST + 1 Redis round trip" if cluster else "bare Starlette POST"
    table.add_row(f"baseline: {what}", f"{b['rate']:,.0f} req/s", "", "")
    table.add_row("admission: POST purchases", f"{a['max']['rate']:,.0f} req/s", "", "")
    ratio = results["ratios"]["admission_vs_baseline"]
    target = f">= {results['targets']['admission_ratio']:.0%}"
    table.add_row("admission / baseline", f"{ratio:.0%}", target, verdict("admission_ratio"))
    half = a["half_load"]
    table.add_row(
        f"p50 / p99 at {half['offered_rate']:,.0f} req/s (half)",
        f"{half['p50_ms']:.1f} / {half['p99_ms']:.1f} ms",
        "" if cluster else "p99 <= 50 ms",
        verdict("p99_at_half_load"),
    )
    table.add_row(
        f"worker decisions (batches of {d['batch_size']})",
        f"{d['rate']:,.0f} /s ({d['decided']:,} in {d['seconds']} s)",
        "",
        "",
    )
    table.add_row("the store's bare batched conditional writes", f"{floor['rate']:,.0f} /s", "", "")
    medians = f"{d['median_window_rate']:,.0f} / {floor['median_window_rate']:,.0f} /s"
    table.add_row("median of 10,000-request windows: ours / bare", medians, "", "")
    share = results["ratios"]["decisions_vs_bare_updates"]
    whole = results["ratios"]["decisions_vs_bare_updates_whole_runs"]
    table.add_row(
        "decisions / bare writes (windows; whole runs)",
        f"{share:.0%}; {whole:.0%}",
        ">= 50%",
        verdict("decisions_ratio"),
    )
    if sale := results.get("sale"):
        table.add_row(
            f"sale: {sale['buyers']:,} buyers, {sale['capacity']:,} tickets",
            f"{sale['answered_202']:,} answered 202, {sale['oversold']} oversold,"
            f" sold out in {sale['sell_out_s']} s, all decided"
            f" {sale['settled_after_last_answer_s']} s after the last answer",
            "all answered and decided, 0 oversold",
            verdict("sale"),
        )
    grows = a["memory_as_the_line_grows"]
    table.add_row(
        "server RSS as the line grows",
        " → ".join(f"{m['rss_mib']:.0f} MiB at {m['line']:,}" for m in grows),
        "flat",
        "",
    )
    table.add_row(
        "peak RSS: baseline / eventpro server",
        f"{b['server_peak_rss_mib']:.0f} / {a['server_peak_rss_mib']:.0f} MiB",
        "",
        "",
    )
    console.print(table)


def _loadgen(connections: int, duration: float, processes: int, out: Path) -> None:
    try:
        results = bench_loadgen.measure(connections, duration, processes)
    except bench_loadgen.WrkMissing as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    bench_loadgen.write(results, out)
    table = Table(title="the load generator against wrk (same endpoint, connections, run)")
    for column in ("client", "requests/s", "CPU s", "note"):
        table.add_column(column)
    w, g = results["wrk"], results["loadgen"]
    table.add_row("wrk", f"{w['rate']:,.0f}", f"{w['cpu_s']}", f"{w['threads']} threads")
    note = f"{g['processes']} processes, CPU share {g['cpu_share']:.0%}, {g['errors']} errors"
    table.add_row("eventpro loadtest", f"{g['rate']:,.0f}", f"{g['cpu_s']}", note)
    verdict = "[green]PASS[/]" if results["pass"] else "[red]MISS[/]"
    table.add_row("loadtest / wrk", f"{results['ratio']:.0%}", "", f">= 50% {verdict}")
    console.print(table)
    console.print(f"written to {out}")


def _polls(tier: Tier, servers: Servers, line: int, duration: float, out: Path) -> None:
    results = {"backend": tier.value, **bench_polls.measure(tier, servers, line, duration)}
    path = out.with_name(f"polls-{tier.value}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = Table(title=f"a poll at the head and the tail of a line of {line:,} ({tier})")
    for column in ("measure", "requests/s", "p99", "per admission"):
        table.add_column(column)
    share = results["polls_per_admission"]
    for name, key in (("poll, first in line", "head"), ("poll, last in line", "tail")):
        got = results[f"poll_{key}"]
        table.add_row(name, f"{got['rate']:,.0f}", f"{got['p99_ms']} ms", f"{share[key]}x")
    admission = results["admission"]
    table.add_row(
        "admission (POST)", f"{admission['rate']:,.0f}", f"{admission['p99_ms']} ms", "1x"
    )
    rss = " → ".join(f"{mib:.0f} MiB at {n}" for n, mib in results["server_rss_mib"].items())
    table.add_row("server RSS as the line grows", rss, "", "")
    console.print(table)
    console.print(f"written to {path}")


def _streams(count: int, quick: bool, out: Path) -> None:
    results = bench_streams.measure(count, idle=1.0 if quick else bench_streams.IDLE_SECONDS)
    bench_streams.write(results, out)
    console.print(bench_streams.table(results))
    console.print(f"written to {out}")
