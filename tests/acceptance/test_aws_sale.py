"""A flash sale on the AWS tier through the real CLI: `eventpro aws provision`, two API
processes (`eventpro serve --processes 2`) and two `eventpro worker` processes on the
emulator, thousands of concurrent buyers, one worker SIGKILLed mid-sale (wherever it
happens to be: between conditional writes and completions, or not), then `eventpro audit
--acknowledged` with every purchase a buyer was answered 202 for. The emulator counts the
AWS calls by operation: the test reports them per purchase and holds them to a bound.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from eventpro.loadtest.client import Shot, closed_loop
from tests.aws_support import REGION, calls
from tests.support import (
    ServerProcess,
    all_purchases,
    audit_acknowledged,
    free_port,
    kill_after,
    service_env,
    wait_until,
)

BUYERS = 2000
TICKETS = 500
# AWS calls per admitted purchase, every process and operation counted at the emulator
# (admission, polls excluded, leases, decisions, completion): the target is 2.
CALLS_PER_PURCHASE = 2.0
CONNECTIONS = 64
EMULATOR_TIMEOUT = 120.0  # seconds a buyer waits for an answer

pytestmark = [pytest.mark.slow, pytest.mark.dynamodb]


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventpro", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_sale_on_the_aws_tier_keeps_every_invariant(aws_emulator: str, tmp_path) -> None:
    url = f"dynamodb://sale-{uuid.uuid4().hex[:8]}?region={REGION}&endpoint={aws_emulator}"
    env = service_env(
        EVENTPRO_DATABASE_URL=url,
        EVENTPRO_QUEUE_URL=url,
        EVENTPRO_ADMIN_TOKEN="aws-sale-" + uuid.uuid4().hex,
        EVENTPRO_BATCH_SIZE="200",
        EVENTPRO_VISIBILITY_TIMEOUT="3",
    )
    provisioned = subprocess.run(
        [sys.executable, "-m", "eventpro", "aws", "provision"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert provisioned.returncode == 0, provisioned.stderr
    with ServerProcess(
        env, free_port(), workers=0, processes=2, log=tmp_path / "server.log"
    ) as server:
        event = server.admin.post(
            "/v1/events",
            json={
                "name": "AWS night",
                "venue": "Cloud Hall",
                "starts_at": "2030-01-01T20:00:00Z",
                "per_buyer_limit": 2,
                "sections": [{"name": "Floor", "capacity": TICKETS, "price_cents": 5000}],
            },
        ).json()
        calls(aws_emulator, reset=True)
        victim, survivor = _worker(env), _worker(env)
        shots = [
            Shot(
                f"/v1/events/{event['id']}/purchases",
                {"buyer_id": f"b{i}", "section": "Floor", "quantity": 1},
            )
            for i in range(BUYERS)
        ]
        # the emulator serves one call at a time and copies a table for every transaction,
        # so its answers are far slower than DynamoDB's: a generous client timeout
        answers = asyncio.run(
            closed_loop(
                server.base_url,
                shots,
                CONNECTIONS,
                keep_body=True,
                on_answer=kill_after(victim, BUYERS // 4),
                timeout=EMULATOR_TIMEOUT,
            )
        )
        latencies = sorted(a.latency for a in answers)
        p50, worst = latencies[len(latencies) // 2], latencies[-1]
        print(f"admission latency p50 {p50:.3f} s, max {worst:.3f} s")
        assert Counter(a.status for a in answers) == {202: BUYERS}

        def settled() -> bool:
            return server.client.get(f"/v1/events/{event['id']}").json()["queue"]["depth"] == 0

        try:
            wait_until(settled, timeout=240, interval=0.5)
        finally:
            survivor.send_signal(signal.SIGTERM)
            assert survivor.wait(30) == 0
        assert victim.wait(5) == -signal.SIGKILL
        counted = calls(aws_emulator)
        purchases = all_purchases(server, event["id"])
    positions = sorted(p["position"] for p in purchases if p["position"] is not None)
    assert positions == list(range(1, len(positions) + 1)), "positions repeat or skip"
    acknowledged = [json.loads(a.body)["purchase_id"] for a in answers]
    checked = audit_acknowledged(event["id"], env, acknowledged)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "BROKEN" not in checked.stdout
    per_purchase = _per_purchase(counted, BUYERS)
    print(f"AWS calls per purchase: {per_purchase}")
    assert per_purchase["all"] <= CALLS_PER_PURCHASE, per_purchase


def _per_purchase(counted: dict[str, int], purchases: int) -> dict[str, float]:
    """Calls by operation per purchase; `all` sums them (the event reads of polls too)."""
    shares = {op: round(n / purchases, 3) for op, n in sorted(counted.items())}
    shares["all"] = round(sum(counted.values()) / purchases, 3)
    return shares
