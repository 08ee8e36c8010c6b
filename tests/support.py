"""Helpers shared by tests that run real `eventpro` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class ServerProcess:
    """`python -m eventpro serve` as a real process, with clients for buyers and admins."""

    def __init__(
        self, env: dict[str, str], port: int, workers: int = 1, log: Path | None = None
    ) -> None:
        self.env = env
        self.port = port
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{port}"
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None
        token = env["EVENTPRO_ADMIN_TOKEN"]
        self.client = httpx.Client(base_url=self.base_url, timeout=30)
        self.admin = httpx.Client(
            base_url=self.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def __enter__(self) -> ServerProcess:
        out = open(self._log, "wb") if self._log else subprocess.DEVNULL
        command = ["serve", "--port", str(self.port), "--workers", str(self.workers)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventpro", *command],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout=30, interval=0.1)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}")
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.close()
        self.admin.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def service_env(**overrides: str) -> dict[str, str]:
    """The current environment with EVENTPRO_* settings replaced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPRO_")}
    env.update(overrides)
    return env
