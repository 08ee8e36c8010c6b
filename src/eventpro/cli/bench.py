"""`eventpro bench`: admission and decision speed, against a bare Starlette baseline.

Everything is measured in one run on this machine, with the same server (uvicorn,
uvloop, httptools), the same load generator and the same connections, so the ratios
mean something on a shared, noisy machine where absolute numbers do not.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from eventpro.bootstrap import (
    Backends,
    Servers,
    Tier,
    bootstrap,
    fresh_backends,
    statement_replay,
)
from eventpro.cli import (
    bench_compare,
    bench_loadgen,
    bench_polls,
    bench_store,
    bench_streams,
    demo,
)
from eventpro.cli.report import write_results
from eventpro.config import Settings
from eventpro.loadtest.client import (
    Answer,
    Shot,
    closed_loop,
    create_event,
    get_json,
    one_section_event,
    one_ticket_buyers,
    open_loop,
    percentile,
)
from eventpro.loadtest.http import run
from eventpro.loadtest.process import (
    free_port,
    served,
    served_baseline,
    tree_peak_rss_mib,
)
from eventpro.ports import Clock
from eventpro.services.decisions import decide_streak
from eventpro.worker.loop import overlap_thread

console = Console()
# Embedded: admission against a bare Starlette POST (wrk on both), the workers against
# their own statements replayed bare. Cluster: admission (2 processes) against a bare
# Starlette endpoint making one Redis round trip (2 processes); the workers against the
# store's own statements replayed bare on PostgreSQL.
TARGETS = {"admission_ratio": 0.5, "p99_ms_at_half_load": 50.0, "decisions_ratio": 0.5}
CLUSTER_TARGETS = {"admission_ratio": 1.0, "decisions_ratio": 0.5}
WARM_UP = 2_000  # requests sent before measuring
IDLE_STREAMS_CPU = 0.10  # the most 10,000 idle streams may take of a core
RSS_GROWTH = 0.10  # the most the server's memory may grow from a line of 10,000 to a long one


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


def _baseline(
    env: dict[str, str],
    connections: int,
    duration: float,
    count: int,
    path: str = "/hello",
    processes: int = 1,
) -> dict[str, Any]:
    with served_baseline(env, processes) as (base, process):
        answers = _closed(base, one_ticket_buyers(path, 0, count, "bench"), connections, duration)
        wrk = bench_loadgen.wrk_buyers(base + path, connections, duration)
        rss = round(tree_peak_rss_mib(process.pid), 1)
        return {**_rate(answers, 202), "wrk": wrk, "server_peak_rss_mib": rss}


def _admission(
    env: dict[str, str], connections: int, duration: float, count: int, processes: int = 1
) -> dict[str, Any]:
    """Max admission rate (the load generator, then wrk), then the latency at half that
    rate (open loop), API only."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
    args += ["--processes", str(processes)]
    with served(args, env, f"{base}/healthz") as process:
        body = one_section_event("bench", 10_000_000, 100)
        event_id = create_event(base, env["EVENTPRO_ADMIN_TOKEN"], body)
        path = f"/v1/events/{event_id}/purchases"

        def memory() -> dict[str, float]:
            event = get_json(f"{base}/v1/events/{event_id}")
            depth = event["queue"]["depth"] if isinstance(event, dict) else 0
            return {"line": depth, "rss_mib": round(tree_peak_rss_mib(process.pid, "VmRSS"), 1)}

        buyers = one_ticket_buyers(path, 0, count, "bench")
        peak = _rate(_closed(base, buyers, connections, duration), 202)
        after_peak = memory()
        wrk = bench_loadgen.wrk_buyers(base + path, connections, duration)
        half = max(1.0, peak["rate"] / 2)
        paced_buyers = one_ticket_buyers(path, count, int(half * duration), "bench")
        paced = run(open_loop(base, paced_buyers, half, connections))
        latencies = [a.latency for a in paced if a.status == 202]

        def ms(fraction: float) -> float:
            return round(percentile(latencies, fraction) * 1000, 2)

        return {
            "event_id": event_id,
            "max": peak,
            "wrk": wrk,
            "half_load": {
                "offered_rate": round(half, 1),
                "answered": len(latencies),
                "errors": len(paced) - len(latencies),
                "p50_ms": ms(0.5),
                "p99_ms": ms(0.99),
                "p999_ms": ms(0.999),
                "max_ms": ms(1.0),
            },
            "server_peak_rss_mib": round(tree_peak_rss_mib(process.pid), 1),
            # The backlog lives in the queue, not in the process: RSS must not follow the line.
            "memory_as_the_line_grows": [after_peak, memory()],
        }


def _decisions(backends: Backends, batch_size: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Decide the whole line left by the admission run, in-process, as a worker does; and,
    where the store offers it, replay the very statements they wrote, bare."""
    settings = Settings(
        database_url=backends.database_url, queue_url=backends.queue_url, batch_size=batch_size
    )
    container = bootstrap(settings)
    policy = container.policy  # as deployed
    replay = statement_replay(backends.database_url, container.store, container.queue)
    decided = 0
    marks = [(time.perf_counter(), 0)]  # after each streak of batches: (time, decided so far)
    try:
        with overlap_thread(policy) as overlap:
            while (
                result := decide_streak(container.store, container.queue, Clock(), policy, overlap)
            ).leased:
                decided += result.decided
                marks.append((time.perf_counter(), decided))
                if replay is not None:
                    replay.mark(decided)
    except BaseException:
        if replay is not None:
            replay.discard()
        raise
    finally:
        container.close()
    replayed = bench_store.rates(replay.run(), batch_size) if replay is not None else None
    return bench_store.rates(marks, batch_size), replayed


def bench(
    duration: Annotated[float, typer.Option(envvar="EVENTPRO_BENCH_DURATION", min=0.5)] = 8.0,
    connections: Annotated[int, typer.Option(envvar="EVENTPRO_BENCH_CONNECTIONS", min=1)] = 128,
    batch_size: Annotated[int, typer.Option(envvar="EVENTPRO_BATCH_SIZE", min=1)] = 500,
    out: Annotated[
        Path,
        typer.Option(
            envvar="EVENTPRO_BENCH_OUT",
            file_okay=False,
            help="the directory each measure writes its JSON file to",
        ),
    ] = Path("bench-results"),
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
    runs: Annotated[
        int | None,
        typer.Option(min=1, max=20, help="measure this many times, report the medians [5]"),
    ] = None,
    streams: Annotated[
        int,
        typer.Option(
            "--streams",
            min=0,
            max=20_000,
            help="measure this many open idle purchase streams instead (e.g. 10000)",
        ),
    ] = 0,
    demo_sale: Annotated[
        bool, typer.Option("--demo", help="measure the sale of `make demo` instead")
    ] = False,
    compare: Annotated[
        str,
        typer.Option(
            metavar="REV",
            help="compare this build's server with a git revision's instead: polls and"
            " admissions, alternated rounds (--runs, default 6)",
        ),
    ] = "",
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
    try:  # now, not after minutes of measuring
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        console.print(f"[red]--out {out}: {exc.strerror}[/]")
        raise typer.Exit(2) from exc
    if compare:
        if backend == "aws":  # the emulator serves one call at a time: no µs to compare
            console.print("[red]--compare runs on sqlite, postgres or mariadb, not aws[/]")
            raise typer.Exit(2)
        rounds = runs or (2 if quick else 6)
        duration = 0.5 if quick else duration
        servers = Servers(postgres_url, redis_url)
        _compare(compare, Tier.named(backend), servers, rounds, duration, out)
        return
    if backend == "aws":  # its own module: DynamoDB is measured call by call
        from eventpro.cli import bench_aws

        bench_aws.main(quick, connections, batch_size, aws_endpoint, out)
        return
    if quick:
        duration, connections = 0.5, 8
    runs = runs or (1 if quick else 5)
    if loadgen:
        _loadgen(connections, duration, processes, runs, out / "loadgen.json")
        return
    if demo_sale:
        _demo(runs, quick, out / "demo.json")
        return
    if polls:
        servers = Servers(postgres_url, redis_url)
        line = 2_000 if quick else polls
        _polls(Tier.named(backend), servers, line, duration, runs, out)
        return
    if streams:
        count = min(streams, 200) if quick else streams
        _streams(count, quick, runs, out / "streams.json")
        return
    tier = Tier.named(backend)
    servers = Servers(postgres_url, redis_url)
    console.print(f"bench {tier}: {connections} connections, {duration} s per measure, {runs} runs")
    every = _repeated(
        runs, lambda: _one_run(tier, servers, connections, duration, batch_size, quick)
    )
    results = summarise_runs(tier, every, connections, duration)
    path = out / f"bench-{tier.value}.json"
    write_results(results, path)
    _print(results)
    console.print(f"written to {path}")


def _one_run(
    tier: Tier,
    servers: Servers,
    connections: int,
    duration: float,
    batch_size: int,
    quick: bool,
) -> dict[str, Any]:
    """One measure of everything, on fresh backends: baselines, admission, decisions."""
    count = 2_000 if quick else 400_000
    # the cluster is measured as deployed, two API processes, and so is its baseline
    processes = 1 if tier is Tier.SQLITE else 2
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-bench-"))
    try:
        with fresh_backends(tier, servers, workdir) as backends:
            env = {
                **os.environ,
                "EVENTPRO_DATABASE_URL": backends.database_url,
                "EVENTPRO_QUEUE_URL": backends.queue_url,
                "EVENTPRO_ADMIN_TOKEN": secrets.token_urlsafe(24),
                "EVENTPRO_BASELINE_REDIS_URL": servers.redis_url,
            }
            path = "/hello" if tier is Tier.SQLITE else "/hello-redis"
            baseline = _baseline(env, connections, duration, count, path, processes)
            admission = _admission(env, connections, duration, count, processes)
            decisions, replayed = _decisions(backends, batch_size)
            minimal = bench_store.store_ceiling(
                backends.database_url, max(decisions["decided"], batch_size), batch_size
            )
        sale = None
        if tier is not Tier.SQLITE:
            with fresh_backends(tier, servers, workdir) as backends:
                sale = _sale(backends, workdir, quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    one: dict[str, Any] = {
        "baseline": baseline,
        "admission": admission,
        "decisions": decisions,
        "decisions_replayed": replayed,
        "decisions_minimal_writes": minimal,
    }
    admission_share = admission["max"]["rate"] / baseline["rate"] if baseline["rate"] else 0.0
    by_wrk = baseline["wrk"]["rate"]
    # the workers against the same statements replayed bare, or else (MySQL) against the
    # least a sale writes (medians of ~10,000-request windows: a stall moves neither much)
    if replayed is not None:
        decided_share = decisions["rate"] / replayed["rate"] if replayed["rate"] else 0.0
    else:
        theirs = minimal["median_window_rate"]
        decided_share = decisions["median_window_rate"] / theirs if theirs else 0.0
    one["ratios"] = {
        "admission_vs_baseline": round(admission_share, 3),
        "admission_vs_baseline_wrk": round(admission["wrk"]["rate"] / by_wrk, 3) if by_wrk else 0,
        "decisions_vs_ceiling": round(decided_share, 3),
        "decisions_vs_minimal_writes": round(decisions["rate"] / minimal["rate"], 3)
        if minimal["rate"]
        else 0.0,
    }
    if sale is not None:
        one["sale"] = sale
    return one


# figure -> where it is in one run's results; the summary gives each one's median and range
FIGURES: dict[str, tuple[str, ...]] = {
    "baseline_rate": ("baseline", "rate"),
    "baseline_wrk_rate": ("baseline", "wrk", "rate"),
    "admission_rate": ("admission", "max", "rate"),
    "admission_wrk_rate": ("admission", "wrk", "rate"),
    "admission_ratio": ("ratios", "admission_vs_baseline"),
    "admission_ratio_wrk": ("ratios", "admission_vs_baseline_wrk"),
    "half_load_rate": ("admission", "half_load", "offered_rate"),
    "p50_ms": ("admission", "half_load", "p50_ms"),
    "p99_ms": ("admission", "half_load", "p99_ms"),
    "p999_ms": ("admission", "half_load", "p999_ms"),
    "max_ms": ("admission", "half_load", "max_ms"),
    "decisions_rate": ("decisions", "rate"),
    "replayed_rate": ("decisions_replayed", "rate"),
    "minimal_writes_rate": ("decisions_minimal_writes", "rate"),
    "decisions_ratio": ("ratios", "decisions_vs_ceiling"),
    "decisions_vs_minimal_writes": ("ratios", "decisions_vs_minimal_writes"),
    "baseline_peak_rss_mib": ("baseline", "server_peak_rss_mib"),
    "server_peak_rss_mib": ("admission", "server_peak_rss_mib"),
}


def _repeated(runs: int, measure: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    """`measure()` `runs` times, saying as each run ends: every mode's runs."""
    every = []
    for number in range(1, runs + 1):
        every.append(measure())
        console.print(f"run {number} of {runs} done")
    return every


def _figure(one: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = one
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)


def medians_of(
    runs: list[dict[str, Any]], figures: dict[str, tuple[str, ...]]
) -> dict[str, dict[str, float]]:
    """Each figure's median over the runs, with its range (figures a run lacks are left out)."""
    medians: dict[str, dict[str, float]] = {}
    for name, path in figures.items():
        values = [v for one in runs if (v := _figure(one, path)) is not None]
        if values:
            medians[name] = {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
    return medians


def _spread(figure: dict[str, float], form: str = "{:,.0f}", unit: str = "") -> str:
    """`median<unit> [min to max]` of one figure of `medians_of`."""
    low, high = form.format(figure["min"]), form.format(figure["max"])
    return f"{form.format(figure['median'])}{unit} [{low} to {high}]"


def _verdict(passed: bool) -> str:
    return "[green]PASS[/]" if passed else "[red]MISS[/]"


def summarise_runs(
    tier: Tier, runs: list[dict[str, Any]], connections: int, duration: float
) -> dict[str, Any]:
    """Every run, and each figure's median with its range over the runs."""
    medians = medians_of(runs, FIGURES)
    targets = TARGETS if tier is Tier.SQLITE else CLUSTER_TARGETS

    def median(name: str) -> float:
        return medians.get(name, {}).get("median", 0.0)

    passed = {
        "admission_ratio": median("admission_ratio_wrk") >= targets["admission_ratio"],
        "decisions_ratio": median("decisions_ratio") >= targets["decisions_ratio"],
    }
    if tier is Tier.SQLITE:
        passed["p99_at_half_load"] = median("p99_ms") <= TARGETS["p99_ms_at_half_load"]
    sales = [one["sale"] for one in runs if "sale" in one]
    if sales:
        passed["sale"] = all(sale["ok"] for sale in sales)
    return {
        "backend": tier.value,
        "machine": {"cpus": os.cpu_count(), "connections": connections, "duration_s": duration},
        "runs": runs,
        "medians": medians,
        "targets": targets,
        "pass": passed,
    }


def _sale(backends: Backends, workdir: Path, quick: bool) -> dict[str, Any]:
    """The flash sale of the demo (50,000 buyers, 10,000 tickets) on these backends."""
    buyers, tickets = (2_000, 500) if quick else (50_000, 10_000)
    sold = demo.sell(backends, buyers, tickets, demo.CONNECTIONS, workdir)
    n, _ = demo.sale_numbers(backends, sold)
    keep = ("buyers", "answered_202", "capacity", "tickets_sold", "oversold", "fcfs_ok")
    numbers = {k: n[k] for k in keep}
    numbers |= {k: round(n[k], 2) for k in ("sell_out_s", "settled_after_last_answer_s")}
    numbers |= {k: round(n[k], 2) for k in ("total_s", "p99_ms")}
    # every buyer answered 202, every request decided (or the audit fails), none oversold
    numbers["ok"] = n["answered_202"] == buyers and n["audit_ok"] and n["oversold"] == 0
    return numbers


def _print(results: dict[str, Any]) -> None:
    runs = len(results["runs"])
    title = f"eventpro bench {results['backend']}: medians of {runs} runs [range]"
    table = Table(title=f"{title} (same machine, each ratio within one run)")
    for column in ("measure", "median [min to max]", "target", "result"):
        table.add_column(column)
    m, ok, targets = results["medians"], results["pass"], results["targets"]
    cluster = results["backend"] != "sqlite"

    def cell(name: str, unit: str = "", share: bool = False) -> str:
        if name not in m:
            return "-"
        return _spread(m[name], "{:.0%}") if share else _spread(m[name], "{:,.1f}", unit)

    def verdict(name: str) -> str:
        return _verdict(ok[name]) if name in ok else ""

    what = "bare Starlette POST + 1 Redis round trip" if cluster else "bare Starlette POST"
    table.add_row(f"baseline: {what}, wrk", cell("baseline_wrk_rate", " /s"), "", "")
    table.add_row("admission: POST purchases, wrk", cell("admission_wrk_rate", " /s"), "", "")
    admission_target = f">= {targets['admission_ratio']:.0%}"
    table.add_row(
        "admission / baseline (wrk)",
        cell("admission_ratio_wrk", share=True),
        admission_target,
        verdict("admission_ratio"),
    )
    table.add_row("baseline, eventpro loadtest", cell("baseline_rate", " /s"), "", "")
    table.add_row("admission, eventpro loadtest", cell("admission_rate", " /s"), "", "")
    table.add_row("admission / baseline (loadtest)", cell("admission_ratio", share=True), "", "")
    table.add_row("half load offered", cell("half_load_rate", " /s"), "", "")
    for name, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        target = "<= 50 ms" if name == "p99_ms" and not cluster else ""
        result = verdict("p99_at_half_load") if target else ""
        table.add_row(f"{label} at half load", cell(name, " ms"), target, result)
    table.add_row("max at half load", cell("max_ms", " ms"), "", "")
    table.add_row("worker decisions", cell("decisions_rate", " /s"), "", "")
    if "replayed_rate" in m:
        what = "the store's own statements" if cluster else "the workers' own statements"
        table.add_row(f"{what}, replayed bare", cell("replayed_rate", " /s"), "", "")
    least = "least a sale writes (1 UPDATE + INSERTs a batch)"
    table.add_row(least, cell("minimal_writes_rate", " /s"), "", "")
    against = "replayed statements" if "replayed_rate" in m else "bare UPDATEs, median windows"
    table.add_row(
        f"decisions / {against}",
        cell("decisions_ratio", share=True),
        ">= 50%",
        verdict("decisions_ratio"),
    )
    table.add_row(
        "decisions / least a sale writes", cell("decisions_vs_minimal_writes", share=True), "", ""
    )
    _run_rows(table, results, verdict)
    table.add_row("peak RSS, baseline server", cell("baseline_peak_rss_mib", " MiB"), "", "")
    table.add_row("peak RSS, eventpro server", cell("server_peak_rss_mib", " MiB"), "", "")
    console.print(table)


def _run_rows(table: Table, results: dict[str, Any], verdict: Callable[[str], str]) -> None:
    """What each run shows on its own: the sale, and the memory as the line grew."""
    for sale in (one["sale"] for one in results["runs"] if "sale" in one):
        table.add_row(
            f"sale: {sale['buyers']:,} buyers, {sale['capacity']:,} tickets",
            f"{sale['answered_202']:,} answered 202, {sale['oversold']} oversold,"
            f" sold out in {sale['sell_out_s']} s, all decided"
            f" {sale['settled_after_last_answer_s']} s after the last answer",
            "all answered and decided, 0 oversold",
            verdict("sale"),
        )
    for one in results["runs"]:
        grows = one["admission"]["memory_as_the_line_grows"]
        table.add_row(
            "server RSS as the line grows",
            " → ".join(f"{g['rss_mib']:.0f} MiB at {g['line']:,}" for g in grows),
            "flat",
            "",
        )


LOADGEN_FIGURES: dict[str, tuple[str, ...]] = {
    "wrk_rate": ("wrk", "rate"),
    "wrk_cpu_s": ("wrk", "cpu_s"),
    "loadgen_rate": ("loadgen", "rate"),
    "loadgen_cpu_s": ("loadgen", "cpu_s"),
    "loadgen_cpu_share": ("loadgen", "cpu_share"),
    "loadgen_errors": ("loadgen", "errors"),
    "ratio": ("ratio",),
}


def _loadgen(connections: int, duration: float, processes: int, runs: int, out: Path) -> None:
    try:
        every = _repeated(runs, lambda: bench_loadgen.measure(connections, duration, processes))
    except bench_loadgen.WrkMissing as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    medians = medians_of(every, LOADGEN_FIGURES)
    passed = medians["ratio"]["median"] >= bench_loadgen.TARGET
    results = {"runs": every, "medians": medians, "target": bench_loadgen.TARGET, "pass": passed}
    write_results(results, out)
    title = f"the load generator against wrk (same endpoint, connections, run): medians of {runs}"
    table = Table(title=title)
    for column in ("client", "requests/s [range]", "CPU s [range]", "note"):
        table.add_column(column)
    cpu = _spread(medians["wrk_cpu_s"], "{:.2f}")
    threads = f"{every[0]['wrk']['threads']} threads"
    table.add_row("wrk", _spread(medians["wrk_rate"]), cpu, threads)
    share = _spread(medians["loadgen_cpu_share"], "{:.0%}")
    most = medians["loadgen_errors"]["max"]
    errors = f"up to {most:.0f} errors in a run" if most else "0 errors in every run"
    note = f"{processes} processes, CPU share {share}, {errors}"
    cpu = _spread(medians["loadgen_cpu_s"], "{:.2f}")
    table.add_row("eventpro loadtest", _spread(medians["loadgen_rate"]), cpu, note)
    verdict = f">= {bench_loadgen.TARGET:.0%} {_verdict(passed)}"
    table.add_row("loadtest / wrk", _spread(medians["ratio"], "{:.0%}"), "", verdict)
    console.print(table)
    console.print(f"written to {out}")


POLL_FIGURES: dict[str, tuple[str, ...]] = {
    "poll_head_rate": ("poll_head", "rate"),
    "poll_tail_rate": ("poll_tail", "rate"),
    "admission_rate": ("admission", "rate"),
    "head_per_admission": ("polls_per_admission", "head"),
    "tail_per_admission": ("polls_per_admission", "tail"),
    "poll_head_cpu_us": ("poll_head", "cpu_us"),
    "poll_tail_cpu_us": ("poll_tail", "cpu_us"),
    "admission_cpu_us": ("admission", "cpu_us"),
    "head_cost_vs_admission": ("poll_cost_vs_admission", "head"),
    "tail_cost_vs_admission": ("poll_cost_vs_admission", "tail"),
    "bare_poll_rate": ("bare_poll", "rate"),
    "bare_poll_cpu_us": ("bare_poll", "cpu_us"),
    "rss_growth": ("server_rss_growth",),
    # where the line is in Redis: its server's CPU per answer, and the shares with it added
    "poll_head_backend_cpu_us": ("poll_head", "backend_cpu_us"),
    "poll_tail_backend_cpu_us": ("poll_tail", "backend_cpu_us"),
    "admission_backend_cpu_us": ("admission", "backend_cpu_us"),
    "head_tier_cost_vs_admission": ("tier_cost_vs_admission", "head"),
    "tail_tier_cost_vs_admission": ("tier_cost_vs_admission", "tail"),
}
POLL_COST = 0.5  # "far less than an admission": a poll's server CPU at most half of one's


def _polls(tier: Tier, servers: Servers, line: int, duration: float, runs: int, out: Path) -> None:
    every = _repeated(runs, lambda: bench_polls.measure(tier, servers, line, duration))
    medians = medians_of(every, POLL_FIGURES)
    passed = {
        "rss_growth": medians["rss_growth"]["median"] <= RSS_GROWTH,
        "poll_cost": max(medians[f"{end}_cost_vs_admission"]["median"] for end in ("head", "tail"))
        <= POLL_COST,
    }
    results: dict[str, Any] = {"backend": tier.value, "line": line, "runs": every}
    results |= {"medians": medians, "targets": {"poll_cost_vs_admission": POLL_COST}}
    results |= {"pass": passed}
    path = out / f"polls-{tier.value}.json"
    write_results(results, path)
    title = f"a poll at the head and the tail of a line of {line:,} ({tier}): medians of {runs}"
    table = Table(title=title)
    columns = ("measure", "requests/s [range]", "per admission", "server CPU µs/answer [range]")
    for column in (*columns, "CPU / admission's"):
        table.add_column(column)
    verdict = f"(≤ {POLL_COST:.0%} {_verdict(passed['poll_cost'])})"
    for name, key in (("poll, first in line", "head"), ("poll, last in line", "tail")):
        share = _spread(medians[f"{key}_per_admission"], "{:.2f}")
        cost = _spread(medians[f"{key}_cost_vs_admission"], "{:.0%}")
        cpu = _spread(medians[f"poll_{key}_cpu_us"], "{:.0f}")
        table.add_row(name, _spread(medians[f"poll_{key}_rate"]), f"{share}x", cpu, cost)
    cpu = _spread(medians["admission_cpu_us"], "{:.0f}")
    table.add_row("admission (POST)", _spread(medians["admission_rate"]), "1x", cpu, "100%")
    table.add_row("", "", "", "", verdict)
    if "admission_backend_cpu_us" in medians:  # the line is in Redis
        for name, figure, key in (
            ("poll, first in line", "poll_head", "head"),
            ("poll, last in line", "poll_tail", "tail"),
            ("admission (POST)", "admission", ""),
        ):
            backend = _spread(medians[f"{figure}_backend_cpu_us"], "{:.0f}")
            share = _spread(medians[f"{key}_tier_cost_vs_admission"], "{:.0%}") if key else "100%"
            table.add_row(f"{name} + Redis", "", "", f"+ {backend}", share)
    cpu = _spread(medians["bare_poll_cpu_us"], "{:.0f}")
    table.add_row("the same polls, bare Starlette", _spread(medians["bare_poll_rate"]), "", cpu, "")
    growth = _spread(medians["rss_growth"], "{:+.0%}")
    growth += f" (≤ {RSS_GROWTH:.0%} {_verdict(passed['rss_growth'])})"
    table.add_row("server RSS growth, line ~10,000 → whole", growth, "", "", "")
    console.print(table)
    console.print(f"written to {path}")


def _compare(
    rev: str, tier: Tier, servers: Servers, rounds: int, duration: float, out: Path
) -> None:
    try:
        results = bench_compare.measure(rev, tier, servers, rounds, duration)
    except bench_compare.CompareError as exc:
        console.print(f"[red]--compare {rev}: {exc}[/]")
        raise typer.Exit(2) from exc
    figures: dict[str, tuple[str, ...]] = {
        f"{build}_{name}_{figure}": (build, name, figure)
        for build in ("this", "other")
        for name in bench_compare.MEASURES
        for figure in ("rate", "cpu_us")
    }
    figures |= {f"{name}_cpu_ratio": ("cpu_ratio", name) for name in bench_compare.MEASURES}
    results["medians"] = medians = medians_of(results["rounds"], figures)
    path = out / f"compare-{tier.value}.json"
    write_results(results, path)
    other = results["other"]
    title = f"this build against {other['rev']} ({other['commit'][:10]}), {tier}: {rounds} rounds"
    table = Table(title=title)
    for column in ("measure", "this: CPU µs/answer", "other: CPU µs/answer", "this / other"):
        table.add_column(column)
    for name in bench_compare.MEASURES:
        table.add_row(
            name,
            _spread(medians[f"this_{name}_cpu_us"], "{:.1f}"),
            _spread(medians[f"other_{name}_cpu_us"], "{:.1f}"),
            _spread(medians[f"{name}_cpu_ratio"], "{:.3f}"),
        )
        table.add_row(
            f"  {name}s/s",
            _spread(medians[f"this_{name}_rate"]),
            _spread(medians[f"other_{name}_rate"]),
            "",
        )
    console.print(table)
    console.print(f"this build: {results['this']}")
    console.print(f"written to {path}")


DEMO_FIGURES: dict[str, tuple[str, ...]] = {
    name: (name,)
    for name in (
        "all_answered_within_s",
        "baseline_answered_within_s",
        "answered_vs_baseline",
        "all_decided_within_s",
        "sell_out_s",
        "total_s",
        "server_peak_rss_mib",
        "worker_peak_rss_mib",
        "p50_ms",
        "p99_ms",
    )
}
DEMO_TARGETS = {"all_answered_within_s": 5.0, "all_decided_within_s": 10.0}
DEMO_RSS_MB = 250.0  # the most the server (its API processes) may take: 250 MB, in MiB below


def _demo_run(buyers: int, tickets: int) -> dict[str, Any]:
    """One sale on a fresh SQLite file, and the bare endpoint's time for as many answers."""
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-demo-"))
    try:
        database = f"sqlite:///{workdir / 'demo.db'}"
        backends = Backends(database, database)
        bare = demo.baseline_answered_within(buyers, demo.CONNECTIONS)
        sold = demo.sell(backends, buyers, tickets, demo.CONNECTIONS, workdir)
        numbers = demo.sale_numbers(backends, sold)[0]
        numbers["baseline_answered_within_s"] = bare
        numbers["answered_vs_baseline"] = numbers["all_answered_within_s"] / bare
        return numbers
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _demo(runs: int, quick: bool, out: Path) -> None:
    """`make demo` (50,000 buyers, 10,000 tickets, SQLite, 256 connections), `runs` times,
    each beside the same client getting as many answers from a bare endpoint."""
    buyers, tickets = (2_000, 500) if quick else (50_000, 10_000)
    every = _repeated(runs, lambda: _demo_run(buyers, tickets))
    medians = medians_of(every, DEMO_FIGURES)
    passed = {name: medians[name]["median"] <= bound for name, bound in DEMO_TARGETS.items()}
    rss_bound = DEMO_RSS_MB * 1e6 / 2**20
    passed["server_peak_rss"] = medians["server_peak_rss_mib"]["median"] <= rss_bound
    passed["sale"] = all(
        n["answered_202"] == buyers and n["audit_ok"] and n["oversold"] == 0 for n in every
    )
    results = {"buyers": buyers, "tickets": tickets, "runs": every, "medians": medians}
    results |= {"targets": {**DEMO_TARGETS, "server_peak_rss_mb": DEMO_RSS_MB}, "pass": passed}
    write_results(results, out)
    title = f"the demo's sale, {buyers:,} buyers, {tickets:,} tickets: medians of {runs}"
    table = Table(title=title)
    for column in ("measure", "median [min to max]", "target", "result"):
        table.add_column(column)
    answered, decided, rss = "all_answered_within_s", "all_decided_within_s", "server_peak_rss"
    rows = (  # label, figure, its format and unit, target, its verdict's key in `passed`
        ("every buyer answered within", answered, "{:.2f}", " s", "<= 5 s", answered),
        (
            "the same answers from a bare endpoint",
            "baseline_answered_within_s",
            "{:.2f}",
            " s",
            "",
            None,
        ),
        ("demo / bare endpoint", "answered_vs_baseline", "{:.2f}", "x", "", None),
        ("every request decided within", decided, "{:.2f}", " s", "<= 10 s", decided),
        ("server peak RSS (its API processes)", f"{rss}_mib", "{:.0f}", " MiB", "<= 250 MB", rss),
        ("worker peak RSS", "worker_peak_rss_mib", "{:.0f}", " MiB", "", None),
        ("sold out after", "sell_out_s", "{:.2f}", " s", "", None),
    )
    for label, name, form, unit, target, check in rows:
        shown = _verdict(passed[check]) if check else ""
        table.add_row(label, _spread(medians[name], form, unit), target, shown)
    table.add_row("every sale: all answered 202, audited, 0 oversold", "", "", str(passed["sale"]))
    console.print(table)
    console.print(f"written to {out}")


STREAM_FIGURES: dict[str, tuple[str, ...]] = {
    "idle_cpu_share": ("server_idle_cpu_share",),
    "rss_mib_with_streams": ("server_rss_mib_with_streams",),
    "decision_to_event_p99_s": ("decision_to_event_p99_s",),
}


def _streams(count: int, quick: bool, runs: int, out: Path) -> None:
    idle = 1.0 if quick else bench_streams.IDLE_SECONDS

    def measure() -> dict[str, Any]:
        one = bench_streams.measure(count, idle=idle)
        console.print(bench_streams.table(one))
        return one

    every = _repeated(runs, measure)
    medians = medians_of(every, STREAM_FIGURES)
    passed = medians["idle_cpu_share"]["median"] <= IDLE_STREAMS_CPU
    results = {"streams": count, "runs": every, "medians": medians, "pass": {"idle": passed}}
    write_results(results, out)
    idle_cpu = _spread(medians["idle_cpu_share"], "{:.1%}")
    console.print(f"{count:,} idle streams, medians of {runs} runs (range in brackets):")
    bound = f"≤ {IDLE_STREAMS_CPU:.0%} {_verdict(passed)}"
    console.print(f"  server CPU while idle {idle_cpu} ({bound})")
    delay = _spread(medians["decision_to_event_p99_s"], "{:.2f}", " s")
    console.print(f"  decision → event p99 {delay}")
    console.print(f"written to {out}")
