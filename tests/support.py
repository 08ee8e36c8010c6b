"""Helpers shared by tests that run real `eventpro` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from eventpro.adapters.sqlite.database import SqliteDatabase
from eventpro.loadtest.process import free_port, served

__all__ = [
    "ServerProcess",
    "ThrowawayPostgres",
    "audit",
    "audit_acknowledged",
    "create_event",
    "floor",
    "free_port",
    "service_env",
    "throwaway_redis",
    "wait_until",
]


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


def mysql_database(server_url: str, name: str) -> str:
    """The URL of database `name` on the MySQL/MariaDB server of `server_url` (the store
    creates it when it first opens it)."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}", query=""))


def service_env(**overrides: str) -> dict[str, str]:
    """The current environment with EVENTPRO_* settings replaced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPRO_")}
    env.update(overrides)
    return env


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary folder, which a test may stop and start.

    Made with the server's own `initdb` and `pg_ctl`; as root they run as the `postgres`
    user, since PostgreSQL refuses to run as root.
    """

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise FileNotFoundError("no pg_ctl under /usr/lib/postgresql/*/bin")
        self._bin = found[-1].parent
        self.folder = Path(tempfile.mkdtemp(prefix="eventpro-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        data, log = str(self.folder / "data"), str(self.folder / "log")
        self._run("pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def create_event(
    server: ServerProcess, name: str, sections: list[dict[str, object]], **extra: object
) -> str:
    """Create an event through the admin API (it must answer 201); return its id."""
    body = {"name": name, "venue": "Test hall", "starts_at": "2030-01-01T20:00:00Z"}
    created = server.admin.post("/v1/events", json={**body, **extra, "sections": sections})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def floor(tickets: int, price_cents: int = 100) -> list[dict[str, object]]:
    """One general-admission section called Floor."""
    return [{"name": "Floor", "capacity": tickets, "price_cents": price_cents}]


def audit(event_id: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`eventpro audit EVENT_ID [ARGS]` in a process of its own, on the backends of `env`."""
    return subprocess.run(
        [sys.executable, "-m", "eventpro", "audit", event_id, *args],
        env={"COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def audit_acknowledged(
    event_id: str, env: dict[str, str], acknowledged: list[str]
) -> subprocess.CompletedProcess[str]:
    """`eventpro audit EVENT_ID --acknowledged FILE`: every id a buyer was answered 202
    for must be stored, and final or dead-lettered."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write("\n".join(acknowledged))
        file.flush()
        checked = audit(event_id, env, "--acknowledged", file.name)
    assert f"all {len(set(acknowledged))} acknowledged stored" in checked.stdout, checked.stdout
    return checked


async def stampede(base_url: str, event_id: str, body: dict[str, object], buyers: int) -> list[int]:
    """`buyers` concurrent POSTs released at one instant; their status codes."""
    limits = httpx.Limits(max_connections=buyers)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        start = asyncio.Event()

        async def buy(i: int) -> int:
            await start.wait()
            answer = await client.post(
                f"/v1/events/{event_id}/purchases", json={"buyer_id": f"buyer{i}", **body}
            )
            return answer.status_code

        tasks = [asyncio.create_task(buy(i)) for i in range(buyers)]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


def all_orders(server: ServerProcess, event_id: str) -> list[dict[str, object]]:
    """Every order of the event, through the admin listing's pages."""
    return _every_page(server, f"/v1/events/{event_id}/orders")


def all_purchases(server: ServerProcess, event_id: str) -> list[dict[str, object]]:
    """Every purchase of the event, through the admin listing's pages."""
    return _every_page(server, f"/v1/events/{event_id}/purchases")


def _every_page(server: ServerProcess, path: str) -> list[dict[str, object]]:
    items, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = server.admin.get(path, params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def kill_after(process: subprocess.Popen[bytes], answers: int) -> Callable[[object], None]:
    """An `on_answer` callback that SIGKILLs `process` at the `answers`-th answer."""
    seen = 0

    def on_answer(_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == answers:
            process.send_signal(signal.SIGKILL)

    return on_answer


CHROMIUM = os.environ.get("EVENTPRO_CHROMIUM", "/usr/bin/chromium")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
    reason="no Chromium (apt install chromium)",
)


def open_in_chromium(page_path: Path) -> tuple[int, list[int], list[str]]:
    """Open a page in headless Chromium: (table rows, widths of its images, errors)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            rows = page.locator("tbody tr").count()
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        finally:
            browser.close()
    return rows, list(widths), errors


@contextlib.contextmanager
def write_held_open(
    db: SqliteDatabase, change: Callable[[sqlite3.Connection], object] | None = None
) -> Iterator[threading.Thread]:
    """A write transaction of `db` held open by another thread (after `change`, if any)
    until the block ends; the block gets that thread."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write() as conn:
            if change is not None:
                change(conn)
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        yield thread
    finally:
        release.set()
        thread.join()
