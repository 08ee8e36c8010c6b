"""`eventpro bench --polls`: what a buyer's poll costs at the head and at the tail of a
long line, beside what an admission costs, on the same server in the same run.

A line of `line` undecided requests is admitted straight through the queue port (the
point is the line, not how it was filled) into fresh backends of the tier, while
`eventpro serve --workers 0` serves them. Then `wrk` polls `GET /v1/purchases/{id}` of the
first `POLLED` purchases in line, each in turn, then of the last `POLLED`, then POSTs new
purchases, `duration` seconds each. Distinct ids, as real buyers poll: the same id polled
by every connection would be read once per group of polls and flatter them. A poll must
cost far less than an admission wherever the buyer stands (`ahead` is O(log n) on every
queue): its cost is the server process's CPU time per answer, beside its rate, and beside
the same polls answered by a bare Starlette route (`loadtest/baseline.py`), the HTTP
part of any poll. Where the line is in Redis, the Redis server's CPU time per answer is
read too (its INFO): a script run there writes an admission into the line, another reads
a group of polls, so the tier's cost (API + Redis) is shown beside the API process's alone
(the target is the API's). The server's resident memory is read after the same polls and
admissions with the line at about 10,000 and at `line`: the line lives in the queue, not
in the process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from eventpro.bootstrap import Servers, Tier, fresh_backends, open_queue
from eventpro.cli.bench_loadgen import WRK_BUYERS, run_wrk, wrk_path
from eventpro.domain.model import PurchaseRequest
from eventpro.loadtest.client import create_event, one_section_event
from eventpro.loadtest.process import (
    cpu_seconds,
    free_port,
    peak_rss_mib,
    served,
    served_baseline,
)
from eventpro.ports import Admission, IdSource

FIRST_LINE = 10_000
SETTLE_S = 5.0
WARM_S = 2.0  # seconds of each measure before the memory is read at the short line
GROUP = 2_000  # admissions a call: a group commit, as the API makes them
ADMISSION_ROOM = 5_000_000  # undecided requests the admission measure may add to the line
CONNECTIONS = 64  # wrk's, for every measure
POLLED = 1_000  # distinct purchases polled at the head, and at the tail, of the line
# wrk's script: each connection polls the next of the ids in turn (%s: a Lua list)
WRK_POLLS = """
local ids, sent = {%s}, 0
function request()
  sent = sent + 1
  return wrk.format("GET", "/v1/purchases/" .. ids[sent %% #ids + 1])
end
"""


def measure(tier: Tier, servers: Servers, line: int, duration: float) -> dict[str, Any]:
    wrk = wrk_path()
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-polls-"))
    try:
        with fresh_backends(tier, servers, workdir) as backends:
            token = secrets.token_urlsafe(24)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "EVENTPRO_DATABASE_URL": backends.database_url,
                "EVENTPRO_QUEUE_URL": backends.queue_url,
                "EVENTPRO_ADMIN_TOKEN": token,
                # room for the admissions measured after the line: past the limit they
                # would be 429s, cheaper than admissions (the first runs measured those)
                "EVENTPRO_MAX_LINE": str(line + ADMISSION_ROOM),
            }
            args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
            with served(args, env, f"{base}/healthz") as server:
                body = one_section_event("polls", 10_000_000, 1, venue="bench")
                event_id = create_event(base, token, body)
                with _queue_server_cpu(backends.queue_url) as backend_cpu:
                    measured = _measure(
                        wrk,
                        base,
                        server.pid,
                        backends.queue_url,
                        event_id,
                        line,
                        duration,
                        backend_cpu,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    measured["bare_poll"] = bare = _bare_poll(wrk, duration)
    measured["poll_cost_vs_bare"] = {
        end: round(measured[f"poll_{end}"]["cpu_us"] / (bare["cpu_us"] or 1.0), 2)
        for end in ("head", "tail")
    }
    return measured


def _bare_poll(wrk: str, duration: float) -> dict[str, Any]:
    """The same polls answered by a bare Starlette route that reads nothing."""
    with served_baseline(dict(os.environ)) as (base, server):
        ids = [f"pur_bare{i}" for i in range(POLLED)]
        return _wrk(wrk, server.pid, f"{base}/v1/purchases/", duration, _polls_script(ids))


CpuClock = Callable[[], float]  # CPU seconds so far of a process measured beside the API


@contextmanager
def _queue_server_cpu(queue_url: str) -> Iterator[CpuClock | None]:
    """The CPU seconds so far of the Redis server that holds the line, from its INFO
    (used_cpu_user + used_cpu_sys); None for a line kept in the API's own process (SQLite)
    or in a service whose CPU cannot be read (DynamoDB)."""
    parts = urlsplit(queue_url)
    if parts.scheme not in ("redis", "rediss"):
        yield None
        return
    import redis  # here: the embedded tier runs without the redis extra

    client = redis.Redis.from_url(urlunsplit(parts._replace(query="")))

    def cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    try:
        yield cpu
    finally:
        client.close()


def _measure(
    wrk: str,
    base: str,
    pid: int,
    queue_url: str,
    event_id: str,
    line: int,
    duration: float,
    backend_cpu: CpuClock | None,
) -> dict[str, Any]:
    first = _fill(queue_url, event_id, 0, min(FIRST_LINE, line))
    head, tail = first[:POLLED], first[-POLLED:]
    # The same polls and admissions at both lengths of the line, so that the memory read
    # after each differs by the line alone, not by which code paths have run.
    polls_then_admissions(wrk, base, pid, event_id, (head, tail), WARM_S, backend_cpu)
    rss = {_depth(queue_url, event_id): peak_rss_mib(pid, "VmRSS")}
    more = _fill(queue_url, event_id, len(first), line - len(first))
    tail = more[-POLLED:] if more else tail
    time.sleep(SETTLE_S)  # the backends absorb the fill (SQLite checkpoints its WAL)
    poll_head, poll_tail, admission = polls_then_admissions(
        wrk, base, pid, event_id, (head, tail), duration, backend_cpu
    )
    rss[_depth(queue_url, event_id)] = peak_rss_mib(pid, "VmRSS")
    per_admission = admission["rate"] or 1.0
    admission_cpu = admission["cpu_us"] or 1.0
    tier: dict[str, Any] = {}
    if backend_cpu is not None:
        # the same shares with the Redis server's CPU added to the API process's
        admission_tier = admission_cpu + admission["backend_cpu_us"]
        tier["tier_cost_vs_admission"] = {
            end: round((poll["cpu_us"] + poll["backend_cpu_us"]) / admission_tier, 3)
            for end, poll in (("head", poll_head), ("tail", poll_tail))
        }
    return tier | {
        "line": line,
        "duration_s": duration,
        "poll_head": poll_head,
        "poll_tail": poll_tail,
        "admission": admission,
        # undecided requests in line -> the server's RSS after the same polls and admissions
        "server_rss_mib": {str(depth): round(mib, 1) for depth, mib in rss.items()},
        "server_rss_growth": round(max(rss.values()) / min(rss.values()) - 1, 3),
        "polls_per_admission": {
            "head": round(poll_head["rate"] / per_admission, 2),
            "tail": round(poll_tail["rate"] / per_admission, 2),
        },
        # the server's CPU time for a poll, as a share of its CPU time for an admission
        "poll_cost_vs_admission": {
            "head": round(poll_head["cpu_us"] / admission_cpu, 3),
            "tail": round(poll_tail["cpu_us"] / admission_cpu, 3),
        },
    }


def polls_then_admissions(
    wrk: str,
    base: str,
    pid: int,
    event_id: str,
    polled: Sequence[list[str]],
    duration: float,
    backend_cpu: CpuClock | None = None,
) -> list[dict[str, Any]]:
    """Polls of each list of purchases in turn, then admissions to `event_id`: `duration`
    each, with the server's CPU per answer (`bench --compare` measures with it too)."""
    polls = f"{base}/v1/purchases/"
    measured = [_wrk(wrk, pid, polls, duration, _polls_script(ids), backend_cpu) for ids in polled]
    admissions = f"{base}/v1/events/{event_id}/purchases"
    measured.append(_wrk(wrk, pid, admissions, duration, WRK_BUYERS, backend_cpu))
    for one in measured:
        if one["errors"]:  # a rate of refusals is not the rate of the work
            raise RuntimeError(f"{one['errors']} answers were not 2xx: {one}")
    return measured


def _fill(queue_url: str, event_id: str, start: int, count: int) -> list[str]:
    """Admit `count` buyers of one ticket each; their purchase ids, in line order. The
    queue is closed before anything is measured: its threads would share the cores."""
    ids, source, now = [], IdSource(), datetime.now(UTC)
    queue = open_queue(queue_url)
    try:
        for offset in range(start, start + count, GROUP):
            group = [
                Admission(
                    purchase_id=source.new("pur"),
                    event_id=event_id,
                    request=PurchaseRequest(f"line{i}", "Floor", 1, (), 1),
                    per_buyer_limit=4,
                    received_at=now,
                )
                for i in range(offset, min(offset + GROUP, start + count))
            ]
            ids += [admitted.purchase.id for admitted in queue.admit(group)]
    finally:
        queue.close()
    return ids


def _depth(queue_url: str, event_id: str) -> int:
    queue = open_queue(queue_url)
    try:
        return queue.depth(event_id)
    finally:
        queue.close()


def _polls_script(purchase_ids: list[str]) -> str:
    return WRK_POLLS % ",".join(f'"{purchase_id}"' for purchase_id in purchase_ids)


def _wrk(
    wrk: str, pid: int, url: str, duration: float, script: str, backend_cpu: CpuClock | None = None
) -> dict[str, Any]:
    """`run_wrk` over `CONNECTIONS`, and the server's CPU time per answer (µs), and the
    backend's beside it when it can be read."""
    cpu_before = cpu_seconds(pid)
    backend_before = backend_cpu() if backend_cpu else 0.0
    measured = run_wrk(wrk, url, CONNECTIONS, duration, script)
    cpu = cpu_seconds(pid) - cpu_before
    answers = max(1, measured["answers"])
    measured["cpu_us"] = round(cpu / answers * 1e6, 1)
    if backend_cpu is not None:
        measured["backend_cpu_us"] = round((backend_cpu() - backend_before) / answers * 1e6, 1)
    return measured
