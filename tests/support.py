"""Helpers shared by tests that run real `eventpro` processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import httpx

from eventpro.loadtest.process import free_port, served

__all__ = ["ServerProcess", "free_port", "service_env", "throwaway_redis", "wait_until"]


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
        self,
        env: dict[str, str],
        port: int,
        workers: int = 1,
        log: Path | None = None,
        processes: int = 1,
    ) -> None:
        self.env = env
        self.base_url = f"http://127.0.0.1:{port}"
        self._args = ["eventpro", "serve", "--port", str(port), "--workers", str(workers)]
        self._args += ["--processes", str(processes)]
        self._log = log
        self._stack = contextlib.ExitStack()
        token = env["EVENTPRO_ADMIN_TOKEN"]
        self.client = httpx.Client(base_url=self.base_url, timeout=30)
        self.admin = httpx.Client(
            base_url=self.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def __enter__(self) -> ServerProcess:
        self.process = self._stack.enter_context(
            served(self._args, self.env, f"{self.base_url}/healthz", self._log)
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.close()
        self.admin.close()
        self._stack.close()


@contextlib.contextmanager
def throwaway_redis(
    folder: Path, appendfsync: str = "everysec", port: int | None = None
) -> Iterator[str]:
    """A private redis-server with an append-only file in `folder`; yields its URL."""
    port = port or free_port()
    process = start_redis(folder, port, appendfsync)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: redis_answers(url), timeout=10)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def start_redis(folder: Path, port: int, appendfsync: str = "everysec") -> subprocess.Popen[bytes]:
    """Start redis-server with an append-only file in `folder` (restart: same folder and port)."""
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    args += ["--save", "", "--appendonly", "yes", "--appendfsync", appendfsync]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def redis_answers(url: str) -> bool:
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=0.5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def service_env(**overrides: str) -> dict[str, str]:
    """The current environment with EVENTPRO_* settings replaced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPRO_")}
    env.update(overrides)
    return env
