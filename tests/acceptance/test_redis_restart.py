"""Redis killed and restarted mid-sale (AOF, appendfsync always): nothing admitted is lost.

Buyers retry with the same Idempotency-Key on 503 or a dropped connection, as the
contract asks; while Redis is down the API answers 503 with Retry-After, and the worker
backs off. The API process keeps running through the crash. Every purchase answered 202
must still exist afterwards and be decided once, and the audit must pass.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import (
    ServerProcess,
    audit_acknowledged,
    create_event,
    floor,
    free_port,
    redis_answers,
    service_env,
    start_redis,
    wait_until,
)

POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
BUYERS = 600
TICKETS = 200

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason="EVENTPRO_TEST_POSTGRES_URL is not set"),
]


async def _buy_with_retries(base: str, event_id: str, buyer: int, log: list) -> str:
    """One buyer: POST until a 202, retrying 503s and dropped connections with the same key."""
    body = {"buyer_id": f"b{buyer}", "section": "Floor", "quantity": 1}
    headers = {"Idempotency-Key": f"buy-{buyer}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(200):  # bounded: about 20 s of retries at most
            try:
                answer = await client.post(
                    f"/v1/events/{event_id}/purchases", json=body, headers=headers
                )
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            log.append(answer.status_code)
            if answer.status_code == 202:
                return str(answer.json()["purchase_id"])
            assert answer.status_code in (503, 409), answer.text
            if answer.status_code == 503:
                assert "Retry-After" in answer.headers
            await asyncio.sleep(0.1)
    raise AssertionError(f"buyer {buyer} never got a 202")


def test_redis_killed_mid_sale_loses_no_admitted_request(tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    schema = f"eventpro_restart_{uuid.uuid4().hex[:12]}"
    port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    env = service_env(
        EVENTPRO_DATABASE_URL=f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}",
        EVENTPRO_QUEUE_URL=f"redis://127.0.0.1:{port}/0?prefix=restart",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_BATCH_SIZE="20",
    )
    try:
        _run_sale_through_a_crash(env, redis_dir, port)
    finally:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _run_sale_through_a_crash(env: dict[str, str], redis_dir: Path, port: int) -> None:
    statuses: list[int] = []
    redis = start_redis(redis_dir, port, "always")
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_answers(url), timeout=10)
    try:
        with ServerProcess(env, free_port()) as server:
            event_id = create_event(server, "Restart night", floor(TICKETS))

            async def sale() -> list[str]:
                nonlocal redis
                buyers = asyncio.gather(
                    *(
                        _buy_with_retries(server.base_url, event_id, b, statuses)
                        for b in range(BUYERS)
                    )
                )
                await asyncio.sleep(0.5)  # mid-sale: some admitted, some decided, some not
                redis.send_signal(signal.SIGKILL)
                redis.wait(10)
                await asyncio.sleep(1.0)
                redis = start_redis(redis_dir, port, "always")  # same file, same port
                return list(await buyers)

            admitted = asyncio.run(sale())
            wait_until(lambda: _depth(server, event_id) == 0, timeout=60)
            for purchase_id in admitted:
                found = server.client.get(f"/v1/purchases/{purchase_id}")
                assert found.status_code == 200, f"{purchase_id} was lost"
                assert found.json()["status"] in ("confirmed", "rejected")
        assert 503 in statuses, "the crash happened while no buyer was asking"
        checked = audit_acknowledged(event_id, env, admitted)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        redis.terminate()
        redis.wait(10)


def _depth(server: ServerProcess, event_id: str) -> int:
    return int(server.client.get(f"/v1/events/{event_id}").json()["queue"]["depth"])
