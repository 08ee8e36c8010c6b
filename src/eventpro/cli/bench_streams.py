"""`eventpro bench --streams`: many open, idle purchase streams on one API process.

One `eventpro serve --workers 0` on a fresh SQLite file; `streams` buyers are admitted
(so every purchase waits in line), and one live stream is opened on each. While they sit
idle the server's CPU time and resident memory are read from /proc. Then an `eventpro worker`
process decides the whole line, and each stream's final event is timed against its
purchase's decision (the order's `created_at`, stamped when its batch was decided):
the p99 of that delay is what a buyer waits to hear the outcome.
"""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from eventpro.bootstrap import Servers as BackendServers
from eventpro.bootstrap import Tier, bootstrap, fresh_backends
from eventpro.config import Settings
from eventpro.loadtest.client import (
    admitted_ids,
    create_event,
    one_section_event,
    one_ticket_buyers,
    percentile,
)
from eventpro.loadtest.http import run
from eventpro.loadtest.process import (
    cpu_seconds,
    free_port,
    peak_rss_mib,
    served,
    worker_process,
)

IDLE_SECONDS = 30.0  # two heartbeat periods (15 s): their cost is part of an idle stream


class Stream:
    """One raw SSE connection: cheaper than an HTTP client per stream at 10,000 of them."""

    def __init__(self, purchase_id: str) -> None:
        self.purchase_id = purchase_id
        self.opened = asyncio.get_running_loop().create_future()
        self.final_at: float | None = None  # wall-clock time of the final event
        self.waited = False  # the first event said "queued"

    async def follow(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        request = f"GET /v1/purchases/{self.purchase_id}/stream HTTP/1.1\r\nHost: bench\r\n\r\n"
        writer.write(request.encode())
        try:
            while line := await reader.readline():
                if line.startswith(b"data: ") and not self.opened.done():
                    self.waited = b'"status":"queued"' in line
                    self.opened.set_result(None)
                if line.startswith(b"data: ") and b'"status":"confirmed"' in line:
                    self.final_at = time.time()
                    return
        finally:
            if not self.opened.done():
                self.opened.set_result(None)
            writer.close()


async def _open_all(port: int, ids: list[str]) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    streams = [Stream(pid) for pid in ids]
    tasks = []
    for start in range(0, len(streams), 500):  # 500 at a time: no SYN flood of the listener
        batch = streams[start : start + 500]
        tasks += [asyncio.create_task(s.follow(port)) for s in batch]
        await asyncio.gather(*(s.opened for s in batch))
    return streams, tasks


def _decided_at(settings: Settings, ids: list[str]) -> dict[str, float]:
    container = bootstrap(settings)
    try:
        found: dict[str, float] = {}
        for pid in ids:
            purchase = container.queue.get_purchase(pid)
            order_id = purchase.order_id if purchase else None
            order = container.store.get_order(order_id) if order_id else None
            if order is not None:
                found[pid] = datetime.timestamp(order.created_at)
        return found
    finally:
        container.close()


async def _session(port: int, pid: int, ids: list[str], idle: float, env: dict[str, str]) -> Any:
    started = time.perf_counter()
    streams, tasks = await _open_all(port, ids)
    opened_s = time.perf_counter() - started
    cpu_before, idle_started = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(idle)
    idle_cpu = (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - idle_started)
    rss = peak_rss_mib(pid, "VmRSS")
    # A standalone worker decides the line, as on a deployment: not a thread of this
    # process, whose event loop must read 10,000 sockets on time.
    with worker_process(env, Path(os.devnull)):
        await asyncio.wait(tasks, timeout=120)
    return streams, opened_s, idle_cpu, rss


def measure(streams: int, idle: float = IDLE_SECONDS) -> dict[str, Any]:
    """Open `streams` idle purchase streams on one server; CPU, RSS and decision delays."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it too
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-streams-"))
    with fresh_backends(Tier.SQLITE, BackendServers(), workdir) as backends:
        settings = Settings(database_url=backends.database_url, queue_url=backends.queue_url)
        port, token = free_port(), secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "EVENTPRO_DATABASE_URL": backends.database_url,
            "EVENTPRO_ADMIN_TOKEN": token,
            "EVENTPRO_MAX_STREAMS": str(streams + 100),
            "EVENTPRO_MAX_STREAMS_PER_CLIENT": str(streams + 100),
        }
        base = f"http://127.0.0.1:{port}"
        args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
        with served(args, env, f"{base}/healthz") as process:
            ids = _admit(base, token, streams)
            rss_before = peak_rss_mib(process.pid, "VmRSS")
            opened, opened_s, idle_cpu, rss = run(_session(port, process.pid, ids, idle, env))
            decided = _decided_at(settings, ids)
    delays = [s.final_at - decided[s.purchase_id] for s in opened if s.final_at]
    finals = [s.final_at for s in opened if s.final_at]
    return {
        "streams": streams,
        "opened_in_s": round(opened_s, 2),
        "idle_s": idle,
        "server_idle_cpu_share": round(idle_cpu, 3),
        "server_rss_mib_before": round(rss_before, 1),
        "server_rss_mib_with_streams": round(rss, 1),
        "opened_queued": sum(s.waited for s in opened),
        "finals_received": len(delays),
        "decision_to_event_p50_s": round(percentile(delays, 0.5), 3) if delays else None,
        "decision_to_event_p99_s": round(percentile(delays, 0.99), 3) if delays else None,
        "decision_to_event_max_s": round(max(delays), 3) if delays else None,
        # how long the worker took to decide them all, and the streams to hear them all
        "decisions_span_s": round(max(decided.values()) - min(decided.values()), 3),
        "finals_span_s": round(max(finals) - min(finals), 3) if finals else None,
        "open_files_limit": [soft, hard],
    }


def _admit(base: str, token: str, count: int) -> list[str]:
    event_id = create_event(base, token, one_section_event("streams bench", count, 100, 1))
    shots = one_ticket_buyers(f"/v1/events/{event_id}/purchases", 0, count, "s")
    return admitted_ids(base, shots, 64)


def table(results: dict[str, Any]) -> Table:
    r = results
    shown = Table(title=f"{r['streams']:,} open idle purchase streams on one API process")
    for column in ("measure", "value"):
        shown.add_column(column)
    shown.add_row("opened in", f"{r['opened_in_s']} s")
    shown.add_row(f"server CPU while idle ({r['idle_s']} s)", f"{r['server_idle_cpu_share']:.1%}")
    rss = f"{r['server_rss_mib_before']:.0f} → {r['server_rss_mib_with_streams']:.0f} MiB"
    shown.add_row("server RSS: before → with the streams open", rss)
    shown.add_row("final events received", f"{r['finals_received']:,}")
    delays = f"{r['decision_to_event_p50_s']} / {r['decision_to_event_p99_s']} s"
    shown.add_row("decision → event on the stream: p50 / p99", delays)
    return shown
