"""The self-hosted tier scaled out: 3 API processes and 2 worker processes on PostgreSQL
and a Redis with an append-only file; thousands of concurrent buyers over HTTP; one worker
SIGKILLed mid-sale. `eventpro audit` must find all six invariants intact.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from eventpro.loadtest.client import Shot, closed_loop
from tests.support import (
    ServerProcess,
    all_purchases,
    audit_acknowledged,
    free_port,
    kill_after,
    service_env,
    throwaway_redis,
    wait_until,
)

POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
BUYERS = 3000
TICKETS = 1000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason="EVENTPRO_TEST_POSTGRES_URL is not set"),
]


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventpro", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _drop_schema(schema: str) -> None:
    import psycopg

    assert POSTGRES_URL is not None
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_three_api_and_two_worker_processes_keep_every_invariant(tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    schema = f"eventpro_scale_{uuid.uuid4().hex[:12]}"
    with throwaway_redis(tmp_path) as redis_url:
        env = service_env(
            EVENTPRO_DATABASE_URL=f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}"
            f"schema={schema}",
            EVENTPRO_QUEUE_URL=f"{redis_url}?prefix=scale",
            EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
            EVENTPRO_BATCH_SIZE="100",
            EVENTPRO_VISIBILITY_TIMEOUT="2",
        )
        try:
            _sell_and_audit(env)
        finally:
            _drop_schema(schema)


def _sell_and_audit(env: dict[str, str]) -> None:
    with ServerProcess(env, free_port(), workers=0, processes=3) as server:
        ready = server.client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["durability"] == "ok", ready
        event = server.admin.post(
            "/v1/events",
            json={
                "name": "Scale-out night",
                "venue": "Cluster Hall",
                "starts_at": "2030-01-01T20:00:00Z",
                "per_buyer_limit": 2,
                "sections": [{"name": "Floor", "capacity": TICKETS, "price_cents": 5000}],
            },
        ).json()
        victim, survivor = _worker(env), _worker(env)
        shots = [
            Shot(
                f"/v1/events/{event['id']}/purchases",
                {"buyer_id": f"b{i}", "section": "Floor", "quantity": 1 + i % 2},
            )
            for i in range(BUYERS)
        ]
        answers = asyncio.run(
            closed_loop(
                server.base_url, shots, 128, keep_body=True, on_answer=kill_after(victim, 1000)
            )
        )
        assert Counter(a.status for a in answers) == {202: BUYERS}

        def settled() -> bool:
            return server.client.get(f"/v1/events/{event['id']}").json()["queue"]["depth"] == 0

        try:
            wait_until(settled, timeout=90)
        finally:
            survivor.send_signal(signal.SIGTERM)
            assert survivor.wait(30) == 0
        assert victim.wait(5) == -signal.SIGKILL
        purchases = all_purchases(server, event["id"])
    positions = sorted(p["position"] for p in purchases if p["position"] is not None)
    assert positions == list(range(1, len(positions) + 1)), "positions repeat or skip"
    acknowledged = [json.loads(a.body)["purchase_id"] for a in answers]
    checked = audit_acknowledged(event["id"], env, acknowledged)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "BROKEN" not in checked.stdout
