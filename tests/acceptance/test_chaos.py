"""Chaos on the cluster tier: processes and servers die during one sale; nothing breaks.

Three API processes and two workers on a private PostgreSQL and a private Redis (with
`appendfsync always`), buyers spread over the API processes, retrying with the same
Idempotency-Key. During the sale: 20 SIGKILLs of random API and worker processes, each
restarted; Redis SIGKILLed and restarted on its own files; PostgreSQL stopped for 30 s.
Then every purchase a buyer was answered 202 for is stored and decided once
(`eventpro audit --acknowledged`), nothing is oversold, first come first served holds,
and no buyer ever got a 500: only 202, or 503/429 with `Retry-After` while a dependency
was down (admission goes on during the PostgreSQL outage from the event it has cached).
What was injected and what held is written to build/chaos.json (docs/chaos.md shows a run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import (
    ThrowawayPostgres,
    audit_acknowledged,
    free_port,
    redis_answers,
    service_env,
    start_redis,
    wait_until,
)

BUYERS = 1500
TICKETS = 600
KILLS = 20
OUTAGE_S = 30.0
ARRIVALS_S = 36.0  # buyers arrive all through the kills and the outage
REPORT = Path(__file__).resolve().parents[2] / "build" / "chaos.json"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@dataclass
class Fleet:
    """The processes of the sale, each of which may be killed and started again."""

    env: dict[str, str]
    ports: list[int]
    apis: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: Counter[str] = field(default_factory=Counter)

    def start_api(self, port: int) -> None:
        args = ["serve", "--workers", "0", "--port", str(port)]
        self.apis[port] = _eventpro(self.env, *args)

    def start_worker(self, index: int) -> None:
        process = _eventpro(self.env, "worker")
        if index < len(self.workers):
            self.workers[index] = process
        else:
            self.workers.append(process)

    def kill_one(self, rng: random.Random) -> None:
        if rng.random() < 0.5:
            port = rng.choice(self.ports)
            self.apis[port].send_signal(signal.SIGKILL)
            self.apis[port].wait(10)
            self.killed["api"] += 1
            self.start_api(port)
        else:
            index = rng.randrange(len(self.workers))
            self.workers[index].send_signal(signal.SIGKILL)
            self.workers[index].wait(10)
            self.killed["worker"] += 1
            self.start_worker(index)

    def stop(self) -> None:
        for process in [*self.apis.values(), *self.workers]:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in [*self.apis.values(), *self.workers]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _eventpro(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventpro", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _buyer(
    ports: list[int],
    event_id: str,
    buyer: int,
    seen: list[tuple[float, int]],
    rng: random.Random,
) -> str:
    """Arrive in turn, then POST until a 202, on any API process, with the same key each
    time; its purchase id."""
    await asyncio.sleep(ARRIVALS_S * buyer / BUYERS)
    body = {"buyer_id": f"b{buyer}", "section": "Floor", "quantity": 1 + buyer % 2}
    headers = {"Idempotency-Key": f"chaos-{buyer}"}
    deadline = time.monotonic() + 240
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            base = f"http://127.0.0.1:{rng.choice(ports)}"
            try:
                answer = await client.post(
                    f"{base}/v1/events/{event_id}/purchases", json=body, headers=headers
                )
            except httpx.TransportError:  # that process was killed: ask another
                seen.append((time.monotonic(), 0))
                await asyncio.sleep(0.1)
                continue
            seen.append((time.monotonic(), answer.status_code))
            if answer.status_code == 202:
                return str(answer.json()["purchase_id"])
            assert answer.status_code in (409, 429, 503), (answer.status_code, answer.text)
            if answer.status_code != 409:
                assert "Retry-After" in answer.headers
            await asyncio.sleep(float(answer.headers.get("Retry-After", "0.2")))
    raise AssertionError(f"buyer {buyer} never got a 202")


async def _sale(
    fleet: Fleet, event_id: str, postgres: ThrowawayPostgres, redis_restart: callable
) -> tuple[list[str], list[tuple[float, int]], dict[str, float]]:
    rng = random.Random(20261202)
    seen: list[tuple[float, int]] = []  # (time.monotonic(), status; 0: no connection)
    buyers = [
        asyncio.create_task(_buyer(fleet.ports, event_id, i, seen, random.Random(i)))
        for i in range(BUYERS)
    ]
    started = time.monotonic()
    times: dict[str, float] = {"started": started}
    for _ in range(KILLS // 2):  # half the kills, Redis, PostgreSQL, the other half
        await asyncio.sleep(0.3)
        await asyncio.to_thread(fleet.kill_one, rng)
    await asyncio.to_thread(redis_restart)
    times["redis_restarted_s"] = time.monotonic() - started
    await asyncio.to_thread(postgres.stop)
    times["postgres_stopped_s"] = time.monotonic() - started
    for _ in range(KILLS - KILLS // 2):
        await asyncio.sleep(OUTAGE_S / (KILLS - KILLS // 2))
        await asyncio.to_thread(fleet.kill_one, rng)
    await asyncio.to_thread(postgres.start)
    times["postgres_started_s"] = time.monotonic() - started
    return list(await asyncio.gather(*buyers)), seen, times


def test_a_sale_survives_kills_a_redis_crash_and_a_postgres_outage(tmp_path: Path) -> None:
    redis_dir, redis_port = tmp_path / "redis", free_port()
    redis_dir.mkdir()
    redis = start_redis(redis_dir, redis_port, "always")
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    def restart_redis() -> None:
        nonlocal redis
        redis.send_signal(signal.SIGKILL)
        redis.wait(10)
        redis = start_redis(redis_dir, redis_port, "always")

    try:
        with ThrowawayPostgres() as postgres:
            env = service_env(
                EVENTPRO_DATABASE_URL=postgres.url,
                EVENTPRO_QUEUE_URL=redis_url,
                EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
                EVENTPRO_VISIBILITY_TIMEOUT="2",
                EVENTPRO_BATCH_SIZE="50",
                # A kill lands on whatever batch a worker holds, and each counts as a
                # delivery of it: with the default of 5, five kills of workers holding the
                # same batch would dead-letter it as a poison request.
                EVENTPRO_MAX_ATTEMPTS=str(KILLS + 10),
            )
            wait_until(lambda: redis_answers(redis_url), timeout=10)
            fleet = Fleet(env, [free_port() for _ in range(3)])
            try:
                _run(fleet, postgres, restart_redis, env)
            finally:
                fleet.stop()
    finally:
        redis.terminate()
        redis.wait(10)


def _run(fleet: Fleet, postgres: ThrowawayPostgres, restart_redis, env: dict[str, str]) -> None:
    for port in fleet.ports:
        fleet.start_api(port)
    base = f"http://127.0.0.1:{fleet.ports[0]}"
    wait_until(lambda: _healthy(fleet.ports), timeout=30)
    token = env["EVENTPRO_ADMIN_TOKEN"]
    event = httpx.post(
        f"{base}/v1/events",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "name": "Chaos night",
            "venue": "Everywhere",
            "starts_at": "2030-01-01T20:00:00Z",
            "sections": [{"name": "Floor", "capacity": TICKETS, "price_cents": 100}],
        },
        timeout=30,
    ).json()
    for index in range(2):
        fleet.start_worker(index)
    acknowledged, timeline, times = asyncio.run(_sale(fleet, event["id"], postgres, restart_redis))
    seen = Counter(status for _, status in timeline)
    stopped = times["started"] + times["postgres_stopped_s"]
    restarted = times["started"] + times["postgres_started_s"]
    during = Counter(status for at, status in timeline if stopped < at < restarted)
    wait_until(lambda: _settled(fleet.ports, event["id"]), timeout=180)
    checked = audit_acknowledged(event["id"], env, acknowledged)
    held = {
        "every 202 stored and decided once (audit 3)": checked.returncode == 0,
        "never oversold (audit 1)": "BROKEN" not in checked.stdout,
        "no 500 answered": not any(status >= 500 and status != 503 for status in seen),
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "buyers": BUYERS,
                "tickets": TICKETS,
                "injected": {
                    "SIGKILL of an API process": fleet.killed["api"],
                    "SIGKILL of a worker process": fleet.killed["worker"],
                    "Redis SIGKILLed and restarted (appendfsync always)": 1,
                    "PostgreSQL stopped (s)": round(
                        times["postgres_started_s"] - times["postgres_stopped_s"], 1
                    ),
                },
                "answers": {str(k): v for k, v in sorted(seen.items())},
                "answers while PostgreSQL was down": {str(k): v for k, v in sorted(during.items())},
                "acknowledged": len(set(acknowledged)),
                "held": held,
            },
            indent=2,
        )
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert all(held.values()), (held, seen)
    assert sum(fleet.killed.values()) == KILLS
    # buyers asked while PostgreSQL was down: answered 202 (admission needs the queue and
    # a cached event), or 503 + Retry-After (a restarted process without the event)
    assert during[202] + during[503] > 0, during
    assert set(during) <= {0, 202, 429, 503}, during
    assert len(set(acknowledged)) == BUYERS  # one purchase per buyer, none twice


def _healthy(ports: list[int]) -> bool:
    try:
        return all(
            httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1).status_code == 200 for p in ports
        )
    except httpx.TransportError:
        return False


def _settled(ports: list[int], event_id: str) -> bool:
    for port in ports:
        with contextlib.suppress(httpx.TransportError, KeyError, ValueError):
            answer = httpx.get(f"http://127.0.0.1:{port}/v1/events/{event_id}", timeout=5)
            if answer.status_code == 200:
                return bool(answer.json()["queue"]["depth"] == 0)
    return False
