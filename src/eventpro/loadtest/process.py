"""Run a server as a child process for the demo and the benchmark, and read its memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mib(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident memory (VmHWM) in MiB; 0 if it cannot be read.

    `field="VmRSS"` gives the resident memory now instead.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_peak_rss_mib(pid: int, field: str = "VmHWM") -> float:
    """The largest `peak_rss_mib` among `pid` and its descendants (a server's workers)."""
    return max(peak_rss_mib(p, field) for p in _tree(pid))


def tree_total_peak_rss_mib(pid: int) -> float:
    """The sum of the peaks of `pid` and its descendants: at most what they held at once."""
    return sum(peak_rss_mib(p) for p in _tree(pid))


def _tree(pid: int) -> list[int]:
    found = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += _tree(int(child))
    return found


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while starting")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {url} within {timeout} s")


@contextlib.contextmanager
def served(
    args: list[str], env: dict[str, str], health_url: str, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `python -m <args>`, wait until `health_url` answers 200, SIGTERM it at the end."""
    out = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        wait_healthy(health_url, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if log:
            out.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def served_baseline(
    env: dict[str, str], processes: int = 1, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The bare Starlette apps of `loadtest/baseline.py`, served as every bench server is,
    in `processes` processes: their base URL and the (first) process."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = uvicorn_args("eventpro.loadtest.baseline:app", port)
    if processes > 1:
        args += ["--workers", str(processes)]
    with served(args, env, f"{base}/healthz", log) as process:
        yield base, process


@contextlib.contextmanager
def worker_process(
    env: dict[str, str], log: Path, concurrency: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """A standalone `eventpro worker` process logging to `log`, stopped with SIGTERM."""
    with log.open("wb") as out:
        args = [sys.executable, "-m", "eventpro", "worker", "--concurrency", str(concurrency)]
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def uvicorn_args(app: str, port: int) -> list[str]:
    """The way every server of a benchmark is run: uvicorn, uvloop, httptools, no access log."""
    return [
        "uvicorn",
        app,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
