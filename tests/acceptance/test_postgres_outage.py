"""PostgreSQL stopped for 10 s mid-sale: the API stays up, workers back off and resume.

A private PostgreSQL cluster (the shared one is left alone) is stopped with `pg_ctl stop`
while buyers keep arriving, and started again 10 s later. While it is down the API
answers `503` with `Retry-After` (or admits into Redis while its cache of the event
is fresh), never a 500; buyers retry with the same Idempotency-Key. Afterwards every
purchase answered 202 is decided exactly once, all the stock is sold and the audit passes.

Workers run as their own processes so that both meet a backlog they cannot decide: one,
connected before the outage, is frozen with SIGSTOP while the line builds and thawed
once PostgreSQL is down; another starts during the outage. Each must back off (and say
so), never exit or drop work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
import uuid

import httpx
import pytest
import redis

from eventpro.loadtest.process import worker_process
from tests.support import (
    ServerProcess,
    ThrowawayPostgres,
    audit_acknowledged,
    create_event,
    floor,
    free_port,
    service_env,
    wait_until,
)

REDIS_URL = os.environ.get("EVENTPRO_TEST_REDIS_URL")
BUYERS = 500
TICKETS = 150
OUTAGE_S = 10.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="EVENTPRO_TEST_REDIS_URL is not set"),
]


async def _buyer(base: str, event_id: str, buyer: int, answers: list[tuple[float, int]]) -> str:
    """POST until a 202, honouring Retry-After on 503; the same key every time."""
    body = {"buyer_id": f"b{buyer}", "section": "Floor", "quantity": 1}
    headers = {"Idempotency-Key": f"buy-{buyer}"}
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:
        for _ in range(100):
            try:
                answer = await client.post(
                    f"/v1/events/{event_id}/purchases", json=body, headers=headers
                )
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            answers.append((time.monotonic(), answer.status_code))
            if answer.status_code == 202:
                return str(answer.json()["purchase_id"])
            assert answer.status_code == 503, answer.text  # never a 500
            await asyncio.sleep(min(float(answer.headers["Retry-After"]), 1.0))
    raise AssertionError(f"buyer {buyer} never got a 202")


def test_postgres_stopped_for_ten_seconds_mid_sale(tmp_path) -> None:
    assert REDIS_URL is not None
    prefix = f"outage_{uuid.uuid4().hex[:10]}"
    try:
        with ThrowawayPostgres() as postgres:
            env = service_env(
                EVENTPRO_DATABASE_URL=postgres.url,
                EVENTPRO_QUEUE_URL=f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}",
                EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
                EVENTPRO_BATCH_SIZE="10",
            )
            connected_log, late_log = tmp_path / "connected.log", tmp_path / "late.log"
            with ServerProcess(env, free_port(), workers=0) as server:
                event_id = create_event(server, "Outage night", floor(TICKETS))
                answers: list[tuple[float, int]] = []

                async def sale() -> tuple[list[str], float, float]:
                    connected = stack.enter_context(worker_process(env, connected_log))
                    wait_until(lambda: b"deciding batches" in connected_log.read_bytes(), 30)
                    connected.send_signal(signal.SIGSTOP)  # the line builds up
                    buyers = []
                    for b in range(BUYERS):  # arrivals spread over ~14 s
                        buyers.append(
                            asyncio.create_task(_buyer(server.base_url, event_id, b, answers))
                        )
                        await asyncio.sleep(0.028)
                        if b == 60:
                            await asyncio.to_thread(postgres.stop)
                            stopped = time.monotonic()
                            connected.send_signal(signal.SIGCONT)
                            stack.enter_context(worker_process(env, late_log))
                        if b == 60 + int(OUTAGE_S / 0.028):
                            await asyncio.to_thread(postgres.start)
                            started = time.monotonic()
                    return list(await asyncio.gather(*buyers)), stopped, started

                with contextlib.ExitStack() as stack:
                    admitted, stopped, started = asyncio.run(sale())
                    assert started - stopped >= OUTAGE_S - 1
                    during = [status for at, status in answers if stopped < at < started]
                    assert during and set(during) <= {202, 503}, "buyers asked during the outage"
                    wait_until(lambda: _depth(server, event_id) == 0, timeout=90)
                # both workers met the backlog while the database was down, and waited
                assert "backend failed, backing off" in connected_log.read_text()
                assert "backend unavailable, backing off" in late_log.read_text()
                assert len(set(admitted)) == BUYERS  # one purchase per buyer, none twice
                statuses = [server.client.get(f"/v1/purchases/{p}").json() for p in admitted]
                assert all(s["status"] in ("confirmed", "rejected") for s in statuses)
                sold = sum(s["status"] == "confirmed" for s in statuses)
                assert sold == TICKETS, f"{sold} confirmed for {TICKETS} tickets"
                checked = audit_acknowledged(event_id, env, admitted)
                assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        with redis.Redis.from_url(REDIS_URL) as client:
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                client.delete(key)


def _depth(server: ServerProcess, event_id: str) -> int:
    answer = server.client.get(f"/v1/events/{event_id}")
    return int(answer.json()["queue"]["depth"]) if answer.status_code == 200 else -1
