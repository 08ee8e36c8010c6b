"""A worker process killed with SIGKILL mid-batch loses nothing and decides nothing twice.

Real processes: `eventpro serve --workers 0` admits over HTTP, a standalone
`eventpro worker` decides, and is killed while it holds a leased batch (the test shows
the lease was held at the kill); a second worker with a short visibility timeout takes
the expired lease, decides that batch again, and `eventpro audit --acknowledged` finds
every 202 the buyers got stored and final, none sold twice.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, audit, free_port, service_env, wait_until

BUYERS = 6000
TICKETS = 2500


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventpro", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _buy(base: str, event_id: str, first: int, count: int) -> list[str]:
    ids = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(first, first + count):
            answer = client.post(
                f"/v1/events/{event_id}/purchases",
                json={"buyer_id": f"buyer{i}", "section": "Floor", "quantity": 1},
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["purchase_id"])
    return ids


@pytest.mark.slow
def test_sigkill_of_a_worker_mid_batch_loses_nothing_and_sells_nothing_twice(
    tmp_path: Path,
) -> None:
    db = tmp_path / "crash.db"
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{db}",
        EVENTPRO_ADMIN_TOKEN="crash-test-token-0123456789",
        EVENTPRO_BATCH_SIZE="200",
        EVENTPRO_VISIBILITY_TIMEOUT="1",
    )
    with ServerProcess(env, free_port(), workers=0) as server:
        event = server.admin.post(
            "/v1/events",
            json={
                "name": "Crash test",
                "venue": "Lab",
                "starts_at": "2030-01-01T20:00:00Z",
                "sections": [{"name": "Floor", "capacity": TICKETS, "price_cents": 100}],
            },
        )
        assert event.status_code == 201, event.text
        event_id = event.json()["id"]
        with ThreadPoolExecutor(8) as pool:
            chunks = pool.map(
                lambda k: _buy(server.base_url, event_id, k * 750, 750), range(BUYERS // 750)
            )
            admitted = [pid for chunk in chunks for pid in chunk]

        # Given a worker deciding the line, when it is killed holding a batch...
        in_flight = _kill_a_worker_mid_batch(env, db)
        left_after_kill = _undecided(db)
        assert 0 < left_after_kill < BUYERS, "the kill must land while work remains"

        # ...then another worker finishes every admitted request once the lease expires.
        rescuer = _start_worker(env)
        try:
            wait_until(lambda: _undecided(db) == 0, timeout=60)
        finally:
            rescuer.send_signal(signal.SIGTERM)
            assert rescuer.wait(15) == 0

        statuses = Counter(
            server.client.get(f"/v1/purchases/{pid}").json()["status"] for pid in admitted
        )
        # the batch the victim held was delivered again, and decided by the rescuer
        again = [server.client.get(f"/v1/purchases/{pid}").json() for pid in in_flight]
        assert {p["status"] for p in again} <= {"confirmed", "rejected"}
        acknowledged = tmp_path / "acknowledged.txt"
        acknowledged.write_text("\n".join(admitted))
        checked = audit(event_id, env, "--acknowledged", str(acknowledged))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"all {BUYERS} acknowledged stored" in checked.stdout
    assert set(statuses) <= {"confirmed", "rejected"}, statuses
    assert statuses["confirmed"] == TICKETS, statuses
    with sqlite3.connect(db) as conn:
        orders = conn.execute("SELECT purchase_id FROM orders").fetchall()
        (remaining,) = conn.execute("SELECT remaining FROM sections").fetchone()
    per_purchase = Counter(pid for (pid,) in orders)
    assert len(orders) == TICKETS and max(per_purchase.values()) == 1
    assert remaining == 0


def _kill_a_worker_mid_batch(env: dict[str, str], db: Path) -> list[str]:
    """SIGKILL a worker while it holds a leased batch; the ids of that batch. A kill that
    lands between two batches proves nothing, so it is tried again with a new worker."""
    for _ in range(5):
        victim = _start_worker(env)
        wait_until(lambda: _undecided(db) < BUYERS and bool(_leased(db)), timeout=30)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        if leased := _leased(db):
            return leased
    raise AssertionError("no kill landed while a batch was in flight")


def _leased(db: Path) -> list[str]:
    """The purchases leased to a worker and not completed."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT purchase_id FROM line WHERE lease_id IS NOT NULL").fetchall()
    return [row[0] for row in rows]


def _undecided(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT coalesce(sum(undecided), 0) FROM lines").fetchone()
    return int(row[0])


def test_worker_stops_on_sigterm_with_exit_code_zero(tmp_path: Path) -> None:
    env = service_env(EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'term.db'}")
    with subprocess.Popen(
        [sys.executable, "-m", "eventpro", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as worker:
        assert worker.stdout is not None
        started = [worker.stdout.readline().decode() for _ in range(2)]
        assert any("deciding batches" in line for line in started), started
        time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
