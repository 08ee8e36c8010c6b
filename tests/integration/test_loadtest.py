"""The load generator against a real server: what it counts is what the server stored.

Buyers include duplicate submissions with the same Idempotency-Key; the confirmed
purchases the client saw must be exactly the server's orders (same ids, same tickets),
its rejections exactly the server's rejected purchases, and no key bought twice.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from eventpro.loadtest.run import run_load
from eventpro.loadtest.scenario import PRESETS
from tests.support import ServerProcess, all_orders, create_event, floor, free_port, service_env

TICKETS = 300


@pytest.fixture
def server(tmp_path: Path):
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'load.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
    )
    with ServerProcess(env, free_port()) as running:
        yield running


def _purchases(server: ServerProcess, event_id: str, status: str) -> list[dict[str, object]]:
    items, cursor = [], None
    while True:
        params = {"status": status, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = server.admin.get(f"/v1/events/{event_id}/purchases", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("wait", ["poll", "stream"])
def test_counted_outcomes_match_the_stored_purchases(server: ServerProcess, wait: str) -> None:
    event_id = create_event(server, "Counted", floor(TICKETS))
    scenario = PRESETS["smoke"].with_overrides(
        buyers=1000, duplicate_share=0.05, wait=wait, poll_interval_s=0.2
    )
    result = run_load(server.base_url, event_id, scenario)
    summary = result.summary()

    orders = all_orders(server, event_id)
    confirmed = {r.purchase_id for r in result.records if r.outcome == "confirmed"}
    assert confirmed == {o["purchase_id"] for o in orders}
    assert summary["tickets_confirmed"] == sum(int(o["quantity"]) for o in orders) == TICKETS
    rejected = {r.purchase_id for r in result.records if r.outcome.startswith("rejected")}
    assert rejected == {p["purchase_id"] for p in _purchases(server, event_id, "rejected")}
    assert summary["undecided"] == 0 and summary["errors"] == 0
    duplicates = [r for r in result.records if r.duplicate]
    assert duplicates, "the scenario sent no duplicate"
    # a duplicate got the same purchase as its original: one purchase per key
    firsts = {(r.buyer, r.request): r.purchase_id for r in result.records if not r.duplicate}
    assert all(firsts[(r.buyer, r.request)] == r.purchase_id for r in duplicates)
    assert summary["requests"] == 1000 + len(duplicates) == 1000 + summary["duplicates_sent"]
    assert summary["confirmed"] == len(orders)
    assert len(result.series()["t"]) >= 2 and summary["client_cpu_s"] > 0


def test_the_cli_writes_its_results_and_names_a_bad_field(
    server: ServerProcess, tmp_path: Path
) -> None:
    event_id = create_event(server, "CLI", floor(50))
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('name = "tiny"\nbuyers = 120\n[arrival]\nshape = "burst"\n')
    bad.write_text("buyers = 10\n[retry]\nmax_attempts = 0\n")
    out = tmp_path / "results.json"
    base = [sys.executable, "-m", "eventpro", "loadtest", server.base_url, "--event-id", event_id]
    done = subprocess.run(
        [*base, "--scenario", str(good), "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=server.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert results["summary"]["confirmed"] == 50 and results["summary"]["requests"] == 120
    assert len(results["requests"]) == 120 and "load test" in done.stdout
    refused = subprocess.run(
        [*base, "--scenario", str(bad)],
        capture_output=True, text=True, timeout=60, env=server.env,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "retry.max_attempts: Input should be greater than or equal to 1" in refused.stderr
    assert "Traceback" not in refused.stderr
