"""A poison request on the cluster tier: dead-lettered by the real worker, then redriven.

The poison is a data fault an operator can meet: the seat rows of a reserved section say
every seat is sold while the section's count says four remain, so deciding a request for
"any seat in A" raises inside PostgreSQL. The worker must decide the rest of its batch,
retry the poison alone, move it to the dead-letter stream after `max_attempts`, and,
once the data is repaired, finish it when an operator redrives it.
"""

from __future__ import annotations

import os
import secrets
import uuid

import psycopg
import pytest
import redis

from tests.support import (
    ServerProcess,
    audit,
    create_event,
    floor,
    free_port,
    service_env,
    wait_until,
)

SECTIONS: list[dict[str, object]] = [
    *floor(10),
    {"name": "A", "seats": ["A1", "A2", "A3", "A4"], "price_cents": 900},
]
POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("EVENTPRO_TEST_REDIS_URL")

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL), reason="EVENTPRO_TEST_POSTGRES_URL/REDIS_URL not set"
)


def _with(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


def test_poison_request_is_dead_lettered_then_redriven_to_a_decision(tmp_path) -> None:
    assert POSTGRES_URL and REDIS_URL
    scope = f"eventpro_poison_{uuid.uuid4().hex[:10]}"
    env = service_env(
        EVENTPRO_DATABASE_URL=_with(POSTGRES_URL, "schema", scope),
        EVENTPRO_QUEUE_URL=_with(REDIS_URL, "prefix", scope),
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_MAX_ATTEMPTS="3",
    )
    try:
        with ServerProcess(env, free_port(), log=tmp_path / "server.log") as server:
            event_id = create_event(server, "Poison night", SECTIONS)
            _set_seat_rows(scope, event_id, "ord_ghost")  # the fault: seats say sold out
            buy = f"/v1/events/{event_id}/purchases"
            fine = [server.client.post(buy, json={"buyer_id": f"b{n}", "section": "Floor",
                                                  "quantity": 1}) for n in range(4)]  # fmt: skip
            poison = server.client.post(buy, json={"buyer_id": "p", "section": "A", "quantity": 1})
            assert poison.status_code == 202 and all(a.status_code == 202 for a in fine)
            poison_id = poison.json()["purchase_id"]

            def letters() -> list[dict[str, object]]:
                found = server.admin.get("/v1/admin/dead-letters", params={"event_id": event_id})
                return list(found.json()["items"])

            wait_until(lambda: len(letters()) == 1, timeout=30)
            (letter,) = letters()
            assert letter["purchase_id"] == poison_id and letter["attempts"] == 3
            assert "disagree" in str(letter["last_error"])
            assert server.client.get(f"/v1/purchases/{poison_id}").json()["status"] == "failed"
            for answer in fine:  # the rest of the batch was not held back
                purchase = server.client.get(answer.json()["links"]["self"]).json()
                assert purchase["status"] == "confirmed"

            _set_seat_rows(scope, event_id, None)  # the operator repairs the data
            redriven = server.admin.post(
                "/v1/admin/dead-letters/redrive", json={"event_id": event_id}
            )
            assert redriven.json() == {"redriven": 1}
            wait_until(
                lambda: (
                    server.client.get(f"/v1/purchases/{poison_id}").json()["status"] == "confirmed"
                ),
                timeout=30,
            )
            order = server.client.get(f"/v1/purchases/{poison_id}").json()["order"]
            assert order["seats"] == ["A1"] and letters() == []
            checked = audit(event_id, env)
            assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{scope}" CASCADE')
        with redis.Redis.from_url(REDIS_URL) as client:
            for key in client.scan_iter(match=f"{scope}:*", count=1000):
                client.delete(key)


def _set_seat_rows(scope: str, event_id: str, order_id: str | None) -> None:
    assert POSTGRES_URL
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{scope}".seats SET order_id = %s WHERE event_id = %s AND section = %s',
            (order_id, event_id, "A"),
        )
