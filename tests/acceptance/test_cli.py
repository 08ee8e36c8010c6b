"""The real `eventpro` command, run as a subprocess: demo, audit, event, dlq, bench."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventpro.adapters import open_queue, open_store
from eventpro.domain.model import Event
from eventpro.domain.rules import resolve_request
from eventpro.ports import Admission
from tests.support import service_env

EVENT = {
    "name": "CLI night",
    "venue": "Terminal",
    "starts_at": "2030-01-01T20:00:00Z",
    "sections": [
        {"name": "Floor", "capacity": 3, "price_cents": 1000},
        {"name": "A", "price_cents": 2000, "seats": ["A1", "A2"]},
    ],
}


def eventpro(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "eventpro", *args],
        capture_output=True,
        text=True,
        env=env or service_env(),
        timeout=timeout,
    )


@pytest.fixture
def database(tmp_path: Path) -> dict[str, str]:
    return service_env(EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")


def test_demo_sells_without_overselling_and_exits_zero(tmp_path: Path) -> None:
    report = tmp_path / "demo.json"
    done = eventpro(
        "demo", "--buyers", "3000", "--tickets", "500", "--concurrency", "128",
        "--report", str(report),
        env=service_env(COLUMNS="200"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"oversold tickets\s*│\s*0\s*│", done.stdout), done.stdout
    assert re.search(r"FCFS violations\s*│\s*0\s*│", done.stdout)
    assert "BROKEN" not in done.stdout and "admin token for this run" in done.stdout
    numbers = json.loads(report.read_text())
    assert numbers["answered_202"] == 3000 and numbers["oversold"] == 0
    assert numbers["confirmed"] == 500 and numbers["tickets_sold"] == 500
    assert numbers["fcfs_ok"] and numbers["audit_ok"]


def test_event_create_and_show(tmp_path: Path, database) -> None:
    spec = tmp_path / "event.json"
    spec.write_text(json.dumps(EVENT))
    created = eventpro("event", "create", str(spec), env=database)
    assert created.returncode == 0, created.stderr
    event = json.loads(created.stdout)
    assert event["sections"][0]["remaining"] == 3
    shown = eventpro("event", "show", event["id"], env=database)
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == event["id"]
    missing = eventpro("event", "show", "evt_missing", env=database)
    assert missing.returncode != 0 and "no event" in missing.stderr


def test_event_create_from_options_alone(database) -> None:
    created = eventpro(
        "event", "create", "--name", "Options night", "--venue", "Shell",
        "--starts-at", "2030-02-01T20:00:00Z", "--per-buyer-limit", "2",
        "--section", "Floor:100:2500", "--seats", "Box:9000:B1,B2",
        env=database,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    event = json.loads(created.stdout)
    assert event["name"] == "Options night" and event["per_buyer_limit"] == 2
    assert [(s["name"], s["kind"], s["capacity"]) for s in event["sections"]] == [
        ("Floor", "general", 100),
        ("Box", "reserved", 2),
    ]
    bad = eventpro("event", "create", "--name", "x", "--section", "Floor:many:1", env=database)
    assert bad.returncode != 0 and "--section" in bad.stderr


def test_event_create_with_a_bad_file_names_the_field(tmp_path: Path, database) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**EVENT, "per_buyer_limit": 0}))
    failed = eventpro("event", "create", str(spec), env=database)
    assert failed.returncode != 0 and "per_buyer_limit" in failed.stderr


def test_audit_passes_a_clean_sale_and_fails_a_corrupted_one(tmp_path: Path, database) -> None:
    spec = tmp_path / "event.json"
    spec.write_text(json.dumps(EVENT))
    event_id = json.loads(eventpro("event", "create", str(spec), env=database).stdout)["id"]
    clean = eventpro("audit", event_id, env=database)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # Corrupt the stored data behind the product's back: an order beyond the capacity.
    db = database["EVENTPRO_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats, quantity,"
            " amount_cents, created_at) VALUES ('ord_x', ?, 'mallory', 'pur_x', 'Floor', '[]', 4,"
            " 4000, '2030-01-01T00:00:00+00:00')",
            (event_id,),
        )
    broken = eventpro("audit", event_id, env=database)
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout and "capacity 3, sold 4" in broken.stdout


def test_audit_names_a_seat_sold_twice(tmp_path: Path, database) -> None:
    spec = tmp_path / "event.json"
    spec.write_text(json.dumps(EVENT))
    event_id = json.loads(eventpro("event", "create", str(spec), env=database).stdout)["id"]
    db = database["EVENTPRO_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:  # two orders for seat A1, the stock count kept right
        for n in (1, 2):
            conn.execute(
                "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,"
                " quantity, amount_cents, created_at) VALUES (?, ?, ?, ?, 'A', '[\"A1\"]', 1,"
                " 2000, '2030-01-01T00:00:00+00:00')",
                (f"ord_{n}", event_id, f"buyer{n}", f"pur_{n}"),
            )
        conn.execute(
            "UPDATE sections SET remaining = remaining - 2 WHERE event_id = ? AND name = 'A'",
            (event_id,),
        )
    broken = eventpro("audit", event_id, env={**database, "COLUMNS": "200"})
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "seats in two orders: A1" in broken.stdout
    lenient = eventpro("audit", "--no-expect-settled", "evt_missing", env=database)
    assert lenient.returncode != 0 and "no event" in lenient.stderr


def test_dlq_list_and_redrive(database) -> None:
    listed = eventpro("dlq", "list", env=database)
    assert listed.returncode == 0 and "dead letters (0)" in listed.stdout
    redriven = eventpro("dlq", "redrive", "--event-id", "evt_any", env=database)
    assert redriven.returncode == 0 and "redriven: 0" in redriven.stdout
    neither = eventpro("dlq", "redrive", env=database)
    assert neither.returncode != 0


def test_dlq_lists_a_dead_letter_and_redrives_it_at_its_position(tmp_path: Path, database) -> None:
    spec = tmp_path / "event.json"
    spec.write_text(json.dumps(EVENT))
    event = json.loads(eventpro("event", "create", str(spec), env=database).stdout)
    url = database["EVENTPRO_DATABASE_URL"]
    store, queue = open_store(url), open_queue(url)
    try:  # a poison request: its only delivery fails, so it goes to the dead-letter queue
        inventory = store.get_inventory(event["id"])
        (admitted,) = queue.admit([_admission(inventory.event, "poison")])
        (delivery,) = queue.lease(10, 30, datetime.now(UTC))
        assert queue.fail(delivery, "boom: poison", 1, datetime.now(UTC))
    finally:
        queue.close()
        store.close()
    wide = {**database, "COLUMNS": "200"}
    listed = eventpro("dlq", "list", "--event-id", event["id"], env=wide)
    assert listed.returncode == 0 and "dead letters (1)" in listed.stdout
    assert admitted.purchase.id in listed.stdout and "boom: poison" in listed.stdout
    redriven = eventpro("dlq", "redrive", "--purchase-id", admitted.purchase.id, env=database)
    assert redriven.returncode == 0 and "redriven: 1" in redriven.stdout
    shown = json.loads(eventpro("event", "show", event["id"], env=database).stdout)
    assert shown["queue"]["depth"] == 1
    assert eventpro("audit", event["id"], env=database).returncode == 1  # queued: not settled
    lenient = eventpro("audit", "--no-expect-settled", event["id"], env=database)
    assert lenient.returncode == 0, lenient.stdout


def _admission(event: Event, buyer: str) -> Admission:
    return Admission(
        purchase_id=f"pur_{buyer}",
        event_id=event.id,
        request=resolve_request(event, buyer, section="Floor", seats=None, quantity=1),
        per_buyer_limit=event.per_buyer_limit,
        received_at=datetime.now(UTC),
    )


def test_serve_refuses_a_placeholder_admin_token(database) -> None:
    refused = eventpro("serve", env={**database, "EVENTPRO_ADMIN_TOKEN": "changeme"}, timeout=30)
    assert refused.returncode == 1 and "EVENTPRO_ADMIN_TOKEN" in refused.stderr
    assert "changeme" not in refused.stderr


def test_unknown_backend_scheme_lists_the_valid_ones(database) -> None:
    failed = eventpro("migrate", env={**database, "EVENTPRO_DATABASE_URL": "oracle://x"})
    assert failed.returncode == 1
    assert "unknown database URL scheme 'oracle'" in failed.stderr and "sqlite://" in failed.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_bench_quick_writes_its_json(tmp_path: Path, backend: str) -> None:
    if backend == "postgres" and not os.environ.get("EVENTPRO_TEST_POSTGRES_URL"):
        pytest.skip("EVENTPRO_TEST_POSTGRES_URL is not set")
    env = service_env(
        EVENTPRO_BENCH_POSTGRES_URL=os.environ.get("EVENTPRO_TEST_POSTGRES_URL", ""),
        EVENTPRO_BENCH_REDIS_URL=os.environ.get(
            "EVENTPRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
        ),
    )
    runs = 2 if backend == "sqlite" else 1
    args = ("bench", "--quick", "--backend", backend, "--runs", str(runs), "--out", str(tmp_path))
    done = eventpro(*args, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / f"bench-{backend}.json").read_text())
    assert set(results) >= {"runs", "medians", "targets", "pass"}
    assert results["backend"] == backend and len(results["runs"]) == runs
    for one in results["runs"]:
        assert one["baseline"]["rate"] > 0 and one["admission"]["max"]["rate"] > 0
        assert one["baseline"]["wrk"]["rate"] > 0 and one["admission"]["wrk"]["rate"] > 0
        assert one["admission"]["wrk"]["errors"] == 0  # wrk's answers were all 202
        assert one["decisions"]["decided"] > 0
        assert one["decisions_minimal_writes"]["rate"] > 0  # the store's own ceiling, same run
        # the workers' (SQLite) or the store's (PostgreSQL) own statements, replayed bare
        assert one["decisions_replayed"]["decided"] == one["decisions"]["decided"]
        assert one["decisions_replayed"]["rate"] > 0
    rates = [one["admission"]["wrk"]["rate"] for one in results["runs"]]
    assert results["medians"]["admission_wrk_rate"]["min"] == min(rates)
    if backend == "postgres":
        sale = results["runs"][0]["sale"]  # the flash sale on PostgreSQL + Redis, audited
        assert sale["ok"] and sale["answered_202"] == sale["buyers"] == 2000
        assert sale["oversold"] == 0 and sale["tickets_sold"] == sale["capacity"] == 500


def test_bench_refuses_a_file_as_its_out_directory_before_measuring(tmp_path: Path) -> None:
    # a file where the JSON's directory should be used to fail only after every run
    taken = tmp_path / "bench.json"
    taken.write_text("kept")
    done = eventpro("bench", "--out", str(taken), env=service_env(COLUMNS="200"), timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is a file" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert taken.read_text() == "kept" and "bench sqlite" not in done.stdout


def test_bench_compare_serves_a_git_revision_beside_this_build(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    args = ("bench", "--compare", "HEAD", "--quick", "--out", str(tmp_path))
    done = eventpro(*args, env=service_env(COLUMNS="200"), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "compare-sqlite.json").read_text())
    assert results["other"] == {"rev": "HEAD", "commit": head}
    assert results["this"].startswith(head)
    # the other server ran the revision taken from git, not this checkout's src/
    this, other = Path(results["imports"]["this"]), Path(results["imports"]["other"])
    assert other.parts[-4:] == ("other", "src", "eventpro", "__init__.py")
    assert other.parents[1] != this.parents[1]
    assert len(results["rounds"]) == 2  # --quick: 2 rounds, each build first once
    assert {one["first"] for one in results["rounds"]} == {"this", "other"}
    for one in results["rounds"]:
        for build in ("this", "other"):
            for measure in ("poll", "admission"):
                assert one[build][measure]["rate"] > 0 and one[build][measure]["errors"] == 0
                assert one[build][measure]["cpu_us"] > 0
        ratio = one["this"]["poll"]["cpu_us"] / one["other"]["poll"]["cpu_us"]
        assert one["cpu_ratio"]["poll"] == round(ratio, 3)
    assert "this / other" in done.stdout


def test_bench_compare_names_a_revision_git_does_not_know(tmp_path: Path) -> None:
    args = ("bench", "--compare", "no-such-revision", "--quick", "--out", str(tmp_path))
    done = eventpro(*args, env=service_env(COLUMNS="200"), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--compare no-such-revision: git rev-parse" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not list(tmp_path.iterdir())


def test_bench_compare_refuses_the_aws_tier_instead_of_running_its_bench(tmp_path: Path) -> None:
    args = ("bench", "--compare", "HEAD", "--backend", "aws", "--out", str(tmp_path))
    done = eventpro(*args, env=service_env(COLUMNS="200"), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--compare runs on sqlite, postgres or mariadb, not aws" in done.stdout
    assert not list(tmp_path.iterdir())  # the AWS bench's JSON was not written


def test_bench_compare_says_why_a_server_did_not_start(tmp_path: Path) -> None:
    args = ("bench", "--compare", "HEAD", "--quick", "--out", str(tmp_path))
    env = service_env(COLUMNS="200", EVENTPRO_RETRY_AFTER="0")  # `serve` refuses it
    done = eventpro(*args, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the this build's server: the server exited with 1 while starting" in done.stdout
    assert "retry_after" in done.stdout  # the last line of the server's own log
    assert "Traceback" not in done.stdout + done.stderr


def test_bench_loadgen_measures_the_generator_beside_wrk(tmp_path: Path) -> None:
    args = ("bench", "--loadgen", "--quick", "--runs", "2", "--out", str(tmp_path))
    done = eventpro(*args, env=service_env())
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "loadgen.json").read_text())
    assert len(results["runs"]) == 2
    for run in results["runs"]:
        assert run["wrk"]["rate"] > 0 and run["loadgen"]["rate"] > 0
        assert run["loadgen"]["errors"] == 0 and run["loadgen"]["cpu_s"] > 0
        assert run["loadgen"]["answered"] == run["loadgen"]["requests"]
    ratios = sorted(run["ratio"] for run in results["runs"])
    assert results["medians"]["ratio"]["min"] == ratios[0]
    assert results["medians"]["ratio"]["max"] == ratios[-1]
    assert "loadtest / wrk" in done.stdout


def test_bench_streams_measures_open_idle_streams_and_decision_delays(tmp_path: Path) -> None:
    args = ("bench", "--streams", "10000", "--quick", "--out", str(tmp_path))
    done = eventpro(*args, env=service_env())
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "streams.json").read_text())
    assert results["streams"] == 200  # --quick: 200 streams, one run
    (run,) = results["runs"]
    assert run["finals_received"] == 200 and run["server_rss_mib_with_streams"] > 0
    assert 0 <= run["decision_to_event_p99_s"] < 5
    assert results["medians"]["decision_to_event_p99_s"]["median"] == run["decision_to_event_p99_s"]
    assert "decision → event" in done.stdout


def test_bench_polls_measures_polls_and_memory_at_two_lengths_of_the_line(
    tmp_path: Path,
) -> None:
    args = ("bench", "--polls", "100000", "--quick", "--out", str(tmp_path))
    done = eventpro(*args, env=service_env())
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "polls-sqlite.json").read_text())
    assert results["line"] == 2000  # --quick: one run
    (run,) = results["runs"]
    for measure in ("poll_head", "poll_tail", "admission"):
        assert run[measure]["rate"] > 0 and run[measure]["errors"] == 0
        assert run[measure]["cpu_us"] > 0  # the server's CPU time per answer
    cost = run["poll_cost_vs_admission"]["tail"]
    assert cost == round(run["poll_tail"]["cpu_us"] / run["admission"]["cpu_us"], 3)
    # the same polls against a bare route, in the same run: the HTTP part of a poll
    assert run["bare_poll"]["rate"] > 0 and run["bare_poll"]["errors"] == 0
    assert run["poll_cost_vs_bare"]["head"] == round(
        run["poll_head"]["cpu_us"] / run["bare_poll"]["cpu_us"], 2
    )
    # read from the queue: the warm-up admissions joined the short line, the measured
    # ones the long one, so the two readings are of two different lines
    short, long = (int(depth) for depth in run["server_rss_mib"])
    assert 2000 < short < long
    assert results["medians"]["poll_head_rate"]["median"] == run["poll_head"]["rate"]
    assert "server RSS" in done.stdout
    # the line is in the API's own process: no other server's CPU to add
    assert "tier_cost_vs_admission" not in run and "backend_cpu_us" not in run["admission"]


def test_bench_polls_on_redis_adds_the_redis_servers_cpu(tmp_path: Path) -> None:
    if not os.environ.get("EVENTPRO_TEST_POSTGRES_URL"):
        pytest.skip("EVENTPRO_TEST_POSTGRES_URL is not set")
    env = service_env(
        EVENTPRO_BENCH_POSTGRES_URL=os.environ["EVENTPRO_TEST_POSTGRES_URL"],
        EVENTPRO_BENCH_REDIS_URL=os.environ.get(
            "EVENTPRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
        ),
    )
    args = (
        "bench",
        "--polls",
        "100000",
        "--quick",
        "--backend",
        "postgres",
        "--out",
        str(tmp_path),
    )
    done = eventpro(*args, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = json.loads((tmp_path / "polls-postgres.json").read_text())["runs"]
    for measure in ("poll_head", "poll_tail", "admission"):
        assert run[measure]["backend_cpu_us"] > 0  # Redis ran the measure's scripts
    admission = run["admission"]["cpu_us"] + run["admission"]["backend_cpu_us"]
    tail = run["poll_tail"]["cpu_us"] + run["poll_tail"]["backend_cpu_us"]
    assert run["tier_cost_vs_admission"]["tail"] == round(tail / admission, 3)
    assert "Redis" in done.stdout


def test_bench_demo_runs_the_demo_sale_and_reports_its_medians(tmp_path: Path) -> None:
    done = eventpro("bench", "--demo", "--quick", "--out", str(tmp_path), env=service_env())
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "demo.json").read_text())
    (run,) = results["runs"]  # --quick: one sale of 500 tickets to 2,000 buyers
    assert run["answered_202"] == 2000 and run["tickets_sold"] == 500 and run["audit_ok"]
    assert results["pass"]["sale"] and run["oversold"] == 0
    answered = results["medians"]["all_answered_within_s"]
    assert answered["median"] == round(run["all_answered_within_s"], 3)
    # the yardstick: the same client's answers from a bare endpoint, in the same run
    bare = run["baseline_answered_within_s"]
    assert bare > 0 and run["answered_vs_baseline"] == run["all_answered_within_s"] / bare
    assert run["worker_peak_rss_mib"] > 0  # the workers ran in a process of their own
    assert "every buyer answered within" in done.stdout
