"""`eventpro bench`: admission and decision speed, against a bare Starlette baseline.

Everything is measured in one run on this machine, with the same server (uvicorn,
uvloop, httptools), the same load generator and the same connections, so the ratios
mean something on a shared, noisy machine where absolute numbers do not.
"""

from __future__ import annotations

import enum
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

from eventpro.adapters import open_queue, open_store
from eventpro.cli import bench_cluster, bench_loadgen, demo
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
from eventpro.services.decisions import WorkerPolicy, decide_streak
from eventpro.worker.loop import overlap_thread

console = Console()
TARGETS = {"admission_ratio": 0.5, "p99_ms_at_half_load": 50.0, "decisions_per_second": 20_000}
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


def _decisions(store_url: str, queue_url: str, batch_size: int) -> dict[str, Any]:
    """Decide the whole line left by the admission run, in-process, as a worker does."""
    store, queue = open_store(store_url), open_queue(queue_url)
    clock = Clock()
    policy = WorkerPolicy(batch_size=batch_size, overlap=store_url != queue_url)  # as deployed
    decided, started = 0, time.perf_counter()
    marks = [(started, 0)]  # after each streak of batches: (time, decided so far)
    try:
        with overlap_thread(policy) as overlap:
            while (result := decide_streak(store, queue, clock, policy, overlap)).leased:
                decided += result.decided
                marks.append((time.perf_counter(), decided))
    finally:
        seconds = time.perf_counter() - started
        queue.close()
        store.close()
    return {
        "decided": decided,
        "seconds": round(seconds, 3),
        "rate": round(decided / seconds, 1) if seconds else 0.0,
        "median_window_rate": bench_cluster.median_window_rate(marks),
        "batch_size": batch_size,
    }


class Backend(enum.StrEnum):
    EMBEDDED = "embedded"  # SQLite
    CLUSTER = "cluster"  # PostgreSQL + Redis


def bench(
    duration: Annotated[float, typer.Option(envvar="EVENTPRO_BENCH_DURATION", min=0.5)] = 8.0,
    connections: Annotated[int, typer.Option(envvar="EVENTPRO_BENCH_CONNECTIONS", min=1)] = 128,
    batch_size: Annotated[int, typer.Option(envvar="EVENTPRO_BATCH_SIZE", min=1)] = 500,
    out: Annotated[Path, typer.Option(envvar="EVENTPRO_BENCH_OUT")] = Path(
        "bench-results/bench.json"
    ),
    backend: Annotated[Backend, typer.Option(envvar="EVENTPRO_BENCH_BACKEND")] = Backend.EMBEDDED,
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
) -> None:
    """Baseline vs admission throughput, p99 at half load, worker decisions per second."""
    if quick:
        duration, connections = 0.5, 8
    if loadgen:
        _loadgen(connections, duration, processes, out.with_name("loadgen.json"))
        return
    count = 2_000 if quick else 400_000
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-bench-"))
    scope = ""
    if backend is Backend.CLUSTER:
        store_url, queue_url, scope = bench_cluster.cluster_urls(postgres_url, redis_url)
    else:
        store_url = queue_url = f"sqlite:///{workdir / 'bench.db'}"
    env = {
        **os.environ,
        "EVENTPRO_DATABASE_URL": store_url,
        "EVENTPRO_QUEUE_URL": queue_url,
        "EVENTPRO_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "EVENTPRO_BASELINE_REDIS_URL": redis_url,
    }
    console.print(f"bench {backend}: {connections} connections, {duration} s per measure")
    try:
        path = "/hello-redis" if backend is Backend.CLUSTER else "/hello"
        baseline = _baseline(env, connections, duration, count, path)
        admission = _admission(env, connections, duration, count)
        decisions = _decisions(store_url, queue_url, batch_size)
        floor = sale = None
        if backend is Backend.CLUSTER:
            floor = bench_cluster.bare_batched_updates(
                postgres_url, scope, max(decisions["decided"], batch_size), batch_size
            )
            sale = _sale(store_url, queue_url, workdir, quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if scope:
            bench_cluster.clean_up(postgres_url, redis_url, scope)
    results: dict[str, Any] = {"backend": backend.value}
    results |= _summarise(baseline, admission, decisions, connections, duration, floor)
    if sale is not None:
        results["sale"] = sale
        results["pass"]["sale"] = sale["ok"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    _print(results)
    console.print(f"written to {out}")


def _sale(store_url: str, queue_url: str, workdir: Path, quick: bool) -> dict[str, Any]:
    """The flash sale of the demo (50,000 buyers, 10,000 tickets) on these backends."""
    buyers, tickets = (2_000, 500) if quick else (50_000, 10_000)
    sold = demo.sell(store_url, queue_url, buyers, tickets, 256, workdir)
    n, _ = demo.sale_numbers(store_url, queue_url, sold)
    keep = ("buyers", "answered_202", "capacity", "tickets_sold", "oversold", "fcfs_ok")
    numbers = {k: n[k] for k in keep}
    numbers |= {k: round(n[k], 2) for k in ("sell_out_s", "settled_after_last_answer_s")}
    numbers |= {k: round(n[k], 2) for k in ("total_s", "p99_ms")}
    # every buyer answered 202, every request decided (or the audit fails), none oversold
    numbers["ok"] = n["answered_202"] == buyers and n["audit_ok"] and n["oversold"] == 0
    return numbers


def _summarise(
    baseline: dict[str, Any],
    admission: dict[str, Any],
    decisions: dict[str, Any],
    connections: int,
    duration: float,
    floor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ratio = admission["max"]["rate"] / baseline["rate"] if baseline["rate"] else 0.0
    if floor is not None:  # cluster: sell-through against bare batched UPDATEs
        # medians of windows of ~10,000 requests on both sides: a stall of this shared
        # machine (a checkpoint, a neighbour) then moves neither ratio much
        ours, theirs = decisions["median_window_rate"], floor["median_window_rate"]
        sell_through = ours / theirs if theirs else 0.0
        whole = decisions["rate"] / floor["rate"] if floor["rate"] else 0.0
        return {
            "machine": {"cpus": os.cpu_count(), "connections": connections, "duration_s": duration},
            "baseline": baseline,
            "admission": admission,
            "decisions": decisions,
            "decisions_baseline": floor,
            "ratios": {
                "admission_vs_baseline": round(ratio, 3),
                "decisions_vs_bare_updates": round(sell_through, 3),
                "decisions_vs_bare_updates_whole_runs": round(whole, 3),
            },
            "targets": CLUSTER_TARGETS,
            "pass": {
                "admission_ratio": ratio >= CLUSTER_TARGETS["admission_ratio"],
                "decisions_ratio": sell_through >= CLUSTER_TARGETS["decisions_ratio"],
            },
        }
    return {
        "machine": {"cpus": os.cpu_count(), "connections": connections, "duration_s": duration},
        "baseline": baseline,
        "admission": admission,
        "decisions": decisions,
        "ratios": {"admission_vs_baseline": round(ratio, 3)},
        "targets": TARGETS,
        "pass": {
            "admission_ratio": ratio >= TARGETS["admission_ratio"],
            "p99_at_half_load": admission["half_load"]["p99_ms"] <= TARGETS["p99_ms_at_half_load"],
            "decisions_per_second": decisions["rate"] >= TARGETS["decisions_per_second"],
        },
    }


def _print(results: dict[str, Any]) -> None:
    table = Table(title=f"eventpro bench {results['backend']} (same machine, same run)")
    for column in ("measure", "value", "target", "result"):
        table.add_column(column)
    b, a, d, ok = results["baseline"], results["admission"], results["decisions"], results["pass"]
    floor = results.get("decisions_baseline")

    def verdict(name: str) -> str:
        if name not in ok:
            return ""
        return "[green]PASS[/]" if ok[name] else "[red]MISS[/]"

    what = "bare Starlette POST + 1 Redis round trip" if floor else "bare Starlette POST"
    table.add_row(f"baseline: {what}", f"{b['rate']:,.0f} req/s", "", "")
    table.add_row("admission: POST purchases", f"{a['max']['rate']:,.0f} req/s", "", "")
    ratio = results["ratios"]["admission_vs_baseline"]
    table.add_row("admission / baseline", f"{ratio:.0%}", ">= 50%", verdict("admission_ratio"))
    half = a["half_load"]
    table.add_row(
        f"p50 / p99 at {half['offered_rate']:,.0f} req/s (half)",
        f"{half['p50_ms']:.1f} / {half['p99_ms']:.1f} ms",
        "" if floor else "p99 <= 50 ms",
        verdict("p99_at_half_load"),
    )
    table.add_row(
        f"worker decisions (batches of {d['batch_size']})",
        f"{d['rate']:,.0f} /s ({d['decided']:,} in {d['seconds']} s)",
        "" if floor else ">= 20,000 /s",
        verdict("decisions_per_second"),
    )
    if floor:
        table.add_row("bare batched conditional UPDATEs", f"{floor['rate']:,.0f} /s", "", "")
        medians = f"{d['median_window_rate']:,.0f} / {floor['median_window_rate']:,.0f} /s"
        table.add_row("median of 10,000-request windows: ours / bare", medians, "", "")
        share = results["ratios"]["decisions_vs_bare_updates"]
        whole = results["ratios"]["decisions_vs_bare_updates_whole_runs"]
        table.add_row(
            "decisions / bare UPDATEs (windows; whole runs)",
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
