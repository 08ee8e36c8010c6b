"""Live streams fed by one watcher per event: heartbeats, resuming, bounds, 404s, and
decisions made by a worker in another process (SQLite, and the PostgreSQL + Redis tier)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from eventpro.adapters import open_queue
from eventpro.bootstrap import Servers, Tier, fresh_backends
from tests.support import ServerProcess, free_port, service_env, wait_until

EVENT = {
    "name": "Fan-out night",
    "venue": "Hall",
    "starts_at": "2030-12-12T19:00:00Z",
    "sections": [{"name": "Floor", "capacity": 100, "price_cents": 1000}],
}


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No worker loops (purchases wait), two streams per client, a heartbeat every 0.3 s."""
    folder: Path = tmp_path_factory.mktemp("fanout")
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{folder / 'api.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_MAX_STREAMS_PER_CLIENT="2",
        EVENTPRO_STREAM_HEARTBEAT="0.3",
    )
    with ServerProcess(env, free_port(), workers=0, log=folder / "server.log") as running:
        yield running


def _buy(server: ServerProcess, event_id: str, buyer: str) -> str:
    answer = server.client.post(
        f"/v1/events/{event_id}/purchases",
        json={"buyer_id": buyer, "section": "Floor", "quantity": 1},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["purchase_id"])


def _data(lines: list[str]) -> list[dict[str, object]]:
    return [orjson.loads(line[6:]) for line in lines if line.startswith("data: ")]


def test_a_quiet_stream_sends_keep_alive_comments(idle_server: ServerProcess) -> None:
    event = idle_server.admin.post(
        "/v1/events", json={**EVENT, "sale_opens_at": "2030-01-01T00:00:00Z"}
    ).json()
    lines: list[str] = []
    with idle_server.client.stream("GET", f"/v1/events/{event['id']}/stream") as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            lines.append(line)
            if lines.count(": keep-alive") == 2:
                break
    assert _data(lines)[0]["status"] == "scheduled"


def test_streams_on_unknown_ids_answer_404_before_streaming(idle_server: ServerProcess) -> None:
    for url, code in (
        ("/v1/purchases/pur_nope/stream", "purchase_not_found"),
        ("/v1/events/evt_nope/stream", "event_not_found"),
    ):
        answer = idle_server.client.get(url)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == code


def test_streams_over_the_per_client_bound_get_429_with_retry_after(
    idle_server: ServerProcess,
) -> None:
    event = idle_server.admin.post("/v1/events", json=EVENT).json()
    url = f"{idle_server.base_url}/v1/events/{event['id']}/stream"
    with (
        httpx.Client(timeout=10) as a,
        httpx.Client(timeout=10) as b,
        a.stream("GET", url) as first,
        b.stream("GET", url) as second,
    ):
        assert first.status_code == second.status_code == 200
        refused = idle_server.client.get(url)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "too_many_streams"
    metrics = idle_server.client.get("/metrics").text
    assert "eventpro_streams_refused_total 1.0" in metrics
    wait_until(lambda: _opens(idle_server, url), timeout=5)  # the slots are given back


def _opens(server: ServerProcess, url: str) -> bool:
    with server.client.stream("GET", url) as answer:
        return answer.status_code == 200


def test_a_resumed_stream_continues_from_last_event_id(idle_server: ServerProcess) -> None:
    event = idle_server.admin.post("/v1/events", json=EVENT).json()
    purchase_id = _buy(idle_server, event["id"], "resumer")
    url = f"/v1/purchases/{purchase_id}/stream"
    with idle_server.client.stream("GET", url, headers={"Last-Event-ID": "7"}) as answer:
        first = next(line for line in answer.iter_lines() if line.startswith("id: "))
    assert first == "id: 8"


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventpro", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _watch_until_final(
    server: ServerProcess, purchase_id: str, out: list[dict[str, object]]
) -> None:
    url = f"/v1/purchases/{purchase_id}/stream"
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as client,
        client.stream("GET", url) as answer,
    ):
        for line in answer.iter_lines():
            out.extend(_data([line]))


def _decided_by_another_process(server: ServerProcess, env: dict[str, str]) -> None:
    event = server.admin.post("/v1/events", json=EVENT).json()
    ids = [_buy(server, event["id"], f"fan{i}") for i in range(3)]
    seen: dict[str, list[dict[str, object]]] = {pid: [] for pid in ids}
    threads = [
        threading.Thread(target=_watch_until_final, args=(server, pid, seen[pid])) for pid in ids
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(seen[pid] for pid in ids), timeout=10)  # every stream is open
    worker = _worker(env)
    try:
        for thread in threads:
            thread.join(30)
    finally:
        worker.terminate()
        worker.wait(10)
    for pid in ids:
        assert seen[pid][0]["status"] == "queued", seen[pid]
        assert seen[pid][-1]["status"] == "confirmed", seen[pid]


def test_a_stream_sees_a_decision_made_by_a_worker_process_on_sqlite(tmp_path: Path) -> None:
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
    )
    with ServerProcess(env, free_port(), workers=0, log=tmp_path / "server.log") as server:
        _decided_by_another_process(server, env)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_stream_sees_a_decision_made_by_a_worker_process_on_the_cluster_tier(
    tmp_path: Path,
) -> None:
    postgres = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
    redis = os.environ.get("EVENTPRO_TEST_REDIS_URL")
    if not (postgres and redis):
        if os.environ.get("CI") == "true":
            pytest.fail("EVENTPRO_TEST_POSTGRES_URL and EVENTPRO_TEST_REDIS_URL must be set")
        pytest.skip("EVENTPRO_TEST_POSTGRES_URL / EVENTPRO_TEST_REDIS_URL are not set")
    servers = Servers(postgres_url=postgres, redis_url=redis)
    with fresh_backends(Tier.POSTGRES, servers, tmp_path) as backends:
        env = service_env(
            EVENTPRO_DATABASE_URL=backends.database_url,
            EVENTPRO_QUEUE_URL=backends.queue_url,
            EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        )
        with ServerProcess(env, free_port(), workers=0, log=tmp_path / "server.log") as server:
            _decided_by_another_process(server, env)


def test_a_dead_letter_and_its_redrive_reach_an_open_stream_at_once(tmp_path: Path) -> None:
    """Neither moves the line's depth: the watcher hears them by the line's mark, long
    before its once-a-minute full read (a read timeout of 10 s fails the test)."""
    url = f"sqlite:///{tmp_path / 'dead.db'}"
    env = service_env(EVENTPRO_DATABASE_URL=url, EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24))
    with ServerProcess(env, free_port(), workers=0, log=tmp_path / "server.log") as server:
        event = server.admin.post("/v1/events", json=EVENT).json()
        purchase_id = _buy(server, event["id"], "poisoned")
        queue = open_queue(url)  # a worker's view of the same file, in this process
        statuses: list[str] = []
        try:
            path = f"/v1/purchases/{purchase_id}/stream"
            with server.client.stream("GET", path, timeout=10) as answer:
                for line in answer.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    statuses.append(str(orjson.loads(line[6:])["status"]))
                    if len(statuses) == 1:  # queued: poison it (one attempt allowed)
                        now = datetime.now(UTC)
                        (delivery,) = queue.lease(10, 30, now)
                        assert queue.fail(delivery, "poison", 1, now)
                    elif len(statuses) == 2:  # dead-lettered: put it back in line
                        redrive = {"purchase_ids": [purchase_id]}
                        done = server.admin.post("/v1/admin/dead-letters/redrive", json=redrive)
                        assert done.json() == {"redriven": 1}
                    else:
                        break
        finally:
            queue.close()
    assert statuses == ["queued", "failed", "queued"]
