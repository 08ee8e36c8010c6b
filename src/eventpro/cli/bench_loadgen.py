"""`eventpro bench --loadgen`: the load generator against `wrk`, on the same bare endpoint.

A load generator that cannot offer more than the server takes measures itself. Both
clients play the purchase POST against the bare Starlette baseline (served as every
bench server is), with the same connections, one after the other in one run: `wrk`
(C, epoll) for `duration` seconds, then `eventpro loadtest`'s engine with as many buyers
as wrk answered in that time, all at once, over `processes` client processes.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
from typing import Any

from eventpro.loadtest.process import served_baseline
from eventpro.loadtest.run import run_load
from eventpro.loadtest.scenario import Arrival, Retry, Scenario

PATH = "/v1/events/evt_bench/purchases"
BODY = '{"buyer_id":"bench","section":"Floor","quantity":1}'
TARGET = 0.5  # the generator offers at least half of wrk's rate (issue 5)
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
# The purchase POST with a new buyer each request (one buyer's limit would refuse the
# rest), unique across threads and runs: the body has the shape of the load generator's.
WRK_BUYERS = """
local sent, thread_id, threads = 0, 0, 0
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local run = math.random(1000000000)
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
function request()
  sent = sent + 1
  local body = string.format(
    '{"buyer_id":"w%d-%d-%d","section":"Floor","quantity":1}', run, thread_id, sent)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


class WrkMissing(RuntimeError):
    """wrk is not installed: `apt install wrk` (or `make tools`)."""


def wrk_path() -> str:
    """Where wrk is, or `WrkMissing`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing(WrkMissing.__doc__)
    return wrk


def measure(connections: int, duration: float, processes: int) -> dict[str, Any]:
    """Rates and CPU use of wrk and of the load generator against the bare endpoint."""
    wrk = wrk_path()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPRO_")}
    with served_baseline(env) as (base, _):
        theirs = run_wrk(wrk, base + PATH, connections, duration)
        ours = _loadgen(base, connections, processes, int(theirs["rate"] * max(1, duration)))
    ratio = ours["rate"] / theirs["rate"] if theirs["rate"] else 0.0
    return {
        "connections": connections,
        "duration_s": duration,
        "wrk": theirs,
        "loadgen": ours,
        "ratio": round(ratio, 3),
        "target": TARGET,
        "pass": ratio >= TARGET,
    }


def wrk_buyers(url: str, connections: int, duration: float) -> dict[str, Any]:
    """wrk's rate on the purchase POST at `url`, a new buyer per request."""
    wrk = wrk_path()
    return run_wrk(wrk, url, connections, duration, WRK_BUYERS)


def run_wrk(
    wrk: str, url: str, connections: int, duration: float, lua: str = WRK_SCRIPT
) -> dict[str, Any]:
    """wrk on `url` with the Lua script `lua`: its rate, answers and p99, the answers
    that were not 2xx/3xx plus the socket errors, and wrk's own CPU time. Every wrk run
    of the benches goes through here."""
    threads = min(connections, os.cpu_count() or 1)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = str(max(1, round(duration)))  # wrk takes whole seconds
        args = [wrk, "-t", str(threads), "-c", str(connections), "-d", seconds, "--latency"]
        done = subprocess.run(
            [*args, "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout)
    answers = re.search(r"([0-9]+) requests in", done.stdout)
    if rate is None or answers is None:
        raise RuntimeError(f"cannot read wrk's output:\n{done.stdout}{done.stderr}")
    # answers other than 2xx/3xx (wrk says "Non-2xx or 3xx responses: N") and socket errors
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    failed = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done.stdout
    )
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, failed.groups())) if failed else 0)
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", done.stdout)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rate": round(float(rate.group(1)), 1),
        "answers": int(answers.group(1)),
        "errors": errors,
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else float("nan"),
        "threads": threads,
        "cpu_s": round(cpu, 2),
    }


def _loadgen(base: str, connections: int, processes: int, buyers: int) -> dict[str, Any]:
    scenario = Scenario(
        name="against-wrk",
        buyers=max(buyers, 1000),
        arrival=Arrival(shape="burst"),
        retry=Retry(policy="none", max_attempts=1),
        wait="none",
        connections=max(1, connections // processes),
        processes=processes,
        timeout_s=60,
    )
    summary = run_load(base, "evt_bench", scenario).summary()
    return {
        "rate": round(summary["answered_per_s"], 1),
        "requests": summary["requests"],
        "answered": summary["answered"],
        "errors": summary["5xx"] + summary["timeouts"] + summary["connection_errors"],
        "processes": processes,
        "cpu_s": round(summary["client_cpu_s"], 2),
        "cpu_share": round(summary["client_cpu_share"], 2),
        "wall_s": round(summary["wall_s"], 2),
    }
