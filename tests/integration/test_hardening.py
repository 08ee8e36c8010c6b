"""What a client controls is bounded, and what it must not see it never sees.

Each test names a fault found by trying the API as an attacker would; each failed
before its fix (ids with NUL reached PostgreSQL and answered 500; a 32 MB header was read
whole; silent connections were held for ever; an empty admin token let `Bearer ` in; …).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import select
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from eventpro.api.app import create_app
from eventpro.bootstrap import bootstrap, drop_scope
from eventpro.config import Settings
from tests.backends import backend_url
from tests.integration.conftest import decided
from tests.support import ServerProcess, free_port, service_env, throwaway_redis

CONTROL_IDS = ["%00x", "evt%00", "a%0Ab", "%7F", "%C3%A9"]
EVENT = {
    "name": "Hardened",
    "venue": "Stadium",
    "starts_at": "2030-12-12T19:00:00Z",
    "sections": [{"name": "Floor", "capacity": 5, "price_cents": 100}],
}


def stop_redis(url: str) -> None:
    import redis

    with contextlib.suppress(redis.ConnectionError), redis.Redis.from_url(url) as client:
        client.shutdown(nosave=True)


def _error(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code, error
    return dict(error)


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on the PostgreSQL store: the backend that refused NUL with an error."""
    url = backend_url("postgres", tmp_path_factory.mktemp("pg"))
    env = service_env(
        EVENTPRO_DATABASE_URL=url,
        EVENTPRO_QUEUE_URL=f"sqlite:///{tmp_path_factory.mktemp('q') / 'queue.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
    )
    try:
        with ServerProcess(env, free_port(), workers=0) as running:
            yield running
    finally:
        drop_scope(url)


@pytest.mark.parametrize("raw", CONTROL_IDS)
def test_ids_with_control_characters_name_nothing(postgres_server, raw: str) -> None:
    client = postgres_server.client
    body = {"buyer_id": "b", "section": "Floor", "quantity": 1}
    for answer in (
        client.get(f"/v1/events/{raw}"),
        client.post(f"/v1/events/{raw}/purchases", json=body),
        client.get(f"/v1/orders/{raw}"),
        client.get(f"/v1/purchases/{raw}"),
        client.get(f"/v1/events/{raw}/seats?section=A"),
    ):
        _error(answer, 404, "not_found")


def test_names_with_control_characters_are_refused(server) -> None:
    body = {
        "name": "Night\x00One",
        "venue": "Stadium",
        "starts_at": "2030-12-12T19:00:00Z",
        "sections": [{"name": "Floor", "capacity": 5, "price_cents": 100}],
    }
    assert _error(server.admin.post("/v1/events", json=body), 422, "validation_error")["field"] == (
        "name"
    )
    body = {**body, "name": "Night", "venue": "Sta\x1bdium"}
    assert _error(server.admin.post("/v1/events", json=body), 422, "validation_error")["field"] == (
        "venue"
    )


def test_a_quantity_beside_named_seats_is_refused(server, new_event) -> None:
    url = f"/v1/events/{new_event()['id']}/purchases"
    for quantity in (3, 1):  # it was silently ignored
        body = {"buyer_id": "b", "seats": ["A1"], "quantity": quantity}
        answer = server.client.post(url, json=body)
        assert _error(answer, 422, "quantity_out_of_range")["field"] == "quantity"
    seats = server.client.post(url, json={"buyer_id": "b", "seats": ["A1"]})
    assert seats.status_code == 202, seats.text


def _raw(port: int, payload: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_request_heads_are_bounded_in_size_and_count(server) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    assert _raw(port, huge).startswith(b"HTTP/1.1 431 ")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))  # 2 KB, 150 headers
    answer = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"request_head_too_large" in answer
    metrics = server.client.get("/metrics").text
    assert 'eventpro_refused_total{reason="head_too_large"} 1.0' in metrics
    assert 'eventpro_refused_total{reason="too_many_headers"} 1.0' in metrics
    assert server.client.get("/healthz").status_code == 200  # the server is fine


def test_silent_and_dripping_connections_are_closed(tmp_path) -> None:
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'slow.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_HEAD_TIMEOUT="1",
    )
    with ServerProcess(env, port := free_port(), workers=0) as server:
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        drip = socket.create_connection(("127.0.0.1", port))
        started = time.monotonic()
        drip.sendall(b"GET /healthz HTTP/1.1\r\n")
        for sock in [*silent, drip]:
            sock.settimeout(5)
        for _ in range(3):  # a byte every 0.4 s: never a whole head
            time.sleep(0.4)
            drip.sendall(b"X")
        for sock in [*silent, drip]:
            assert sock.recv(1024) == b"", "the server kept a connection without a request"
            sock.close()
        assert time.monotonic() - started < 4
        assert server.client.get("/healthz").status_code == 200
        assert (
            'eventpro_refused_total{reason="head_timeout"} 21.0'
            in server.client.get("/metrics").text
        )
        # A kept-alive connection: its second head has its whole second from its first
        # byte, though the connection is older (one timer per connection, re-armed).
        kept = socket.create_connection(("127.0.0.1", port), timeout=5)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(1024).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.7)
        kept.sendall(b"GET /healthz HTTP/1.1\r\n")
        second = time.monotonic()
        time.sleep(0.6)  # past a second of the connection, not of the head
        kept.sendall(b"Host: x\r\n\r\n")
        assert kept.recv(1024).startswith(b"HTTP/1.1 200 ")
        kept.sendall(b"GET /healthz HTTP/1.1\r\n")
        third = time.monotonic()
        assert kept.recv(1024) == b"", "a dripping head on a kept-alive connection was kept"
        assert 0.8 < time.monotonic() - third < 2.5
        assert time.monotonic() - second > 1.2
        kept.close()


def test_idle_kept_alive_connections_are_closed_and_busy_ones_kept(tmp_path) -> None:
    """One idle timer per connection, not one per answer: a connection is closed a
    keep-alive period after its last answer, however old it is, and a busy one is kept."""
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'idle.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_KEEP_ALIVE="1",
    )
    poll = b"GET /v1/purchases/pur_idle HTTP/1.1\r\nHost: x\r\n\r\n"  # a hot route's 404
    with ServerProcess(env, port := free_port(), workers=0):
        idle, busy = (socket.create_connection(("127.0.0.1", port), timeout=5) for _ in "ab")
        started = time.monotonic()
        for sock in (idle, busy):
            sock.sendall(poll)
            assert sock.recv(4096).startswith(b"HTTP/1.1 404 ")
        idle_closed = None
        for _ in range(6):  # a request every 0.4 s for 2.4 s: never a whole second idle
            time.sleep(0.4)
            busy.sendall(poll)
            assert busy.recv(4096).startswith(b"HTTP/1.1 404 "), "a busy connection was closed"
            if idle_closed is None and select.select([idle], [], [], 0)[0]:
                assert idle.recv(4096) == b""
                idle_closed = time.monotonic() - started
        assert idle_closed is not None, "an idle connection was kept"
        assert 0.9 < idle_closed < 1.9
        last = time.monotonic()
        assert busy.recv(4096) == b""  # and the busy one, once it idles
        assert 0.8 < time.monotonic() - last < 2.0
        idle.close()
        busy.close()


def test_an_app_built_without_a_usable_token_refuses_every_admin_call(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", admin_token="")
    app = create_app(bootstrap(settings))

    async def call() -> list[int]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                (await client.get("/v1/admin/dead-letters", headers=headers)).status_code
                for headers in ({"Authorization": "Bearer "}, {"Authorization": "Bearer"}, {})
            ]

    assert asyncio.run(call()) == [401, 401, 401]


def test_readyz_and_503s_name_the_backend_but_not_its_error(tmp_path) -> None:
    with throwaway_redis(tmp_path) as redis_url:
        env = service_env(
            EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'r.db'}",
            EVENTPRO_QUEUE_URL=redis_url,
            EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        )
        with ServerProcess(env, free_port(), workers=0) as server:
            event = server.admin.post("/v1/events", json=EVENT).json()
            stop_redis(redis_url)
            ready = server.client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["Retry-After"]
            assert ready.json()["backends"] == {"database": "ok", "queue": "unavailable"}
            body = {"buyer_id": "b", "section": "Floor", "quantity": 1}
            refused = server.client.post(f"/v1/events/{event['id']}/purchases", json=body)
            _error(refused, 503, "backend_unavailable")
            for text in (ready.text, refused.text):
                port = redis_url.rsplit(":", 1)[1].split("/")[0]
                assert "127.0.0.1" not in text and port not in text and "refused" not in text


def test_the_public_event_list_pages_at_most_100(server, new_event) -> None:
    for _ in range(101):
        new_event()
    page = server.client.get("/v1/events", params={"limit": 1000}).json()
    assert len(page["items"]) == 100 and page["next_cursor"] is not None
    rest = server.client.get("/v1/events", params={"limit": 1000, "cursor": page["next_cursor"]})
    assert rest.status_code == 200 and rest.json()["items"]


def test_an_admin_may_create_an_event_of_thousands_of_seats(server) -> None:
    seats = [f"R{row}-{n}" for row in range(50) for n in range(50)]  # 2,500 seats, ~25 KB
    body = {
        "name": "Big room",
        "venue": "Hall",
        "starts_at": "2030-12-12T19:00:00Z",
        "sections": [{"name": "Stalls", "price_cents": 100, "seats": seats}],
    }
    created = server.admin.post("/v1/events", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["sections"][0]["capacity"] == 2500
    _error(server.client.post("/v1/events", json=body), 413, "body_too_large")


def test_concurrent_replays_of_a_decided_key_all_get_the_first_answer(server, new_event) -> None:
    url = f"/v1/events/{new_event()['id']}/purchases"
    body = {"buyer_id": "again", "section": "Floor", "quantity": 1}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = server.client.post(url, json=body, headers=key).json()
    decided(server, first["purchase_id"])

    async def replay() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            return await asyncio.gather(
                *(client.post(url, json=body, headers=key) for _ in range(10))
            )

    answers = asyncio.run(replay())
    assert [a.status_code for a in answers] == [202] * 10
    assert {a.json()["purchase_id"] for a in answers} == {first["purchase_id"]}
