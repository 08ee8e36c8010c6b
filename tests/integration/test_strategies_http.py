"""The synchronous strategies raced through real HTTP, on SQLite, PostgreSQL and MariaDB.

`serve --strategy locking|conditional` decides each purchase inside its request: 300
buyers released at one instant for the last tickets (or the same two seats) get `201`
or `409` at once, and exactly the stock is sold. `naive` (the incident's read, check,
write back) is the negative control: the same test must catch it overselling.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.support import (
    ServerProcess,
    all_orders,
    audit,
    create_event,
    floor,
    free_port,
    mysql_database,
    service_env,
    stampede,
)

BUYERS = 300
TICKETS = 5
POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
MYSQL_URL = os.environ.get("EVENTPRO_TEST_MYSQL_URL")
OVERSELLS = pytest.mark.xfail(strict=True, reason="naive read-then-write oversells")
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgres",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="EVENTPRO_TEST_POSTGRES_URL is not set"),
    ),
    pytest.param(
        "mariadb",
        id="mariadb",
        marks=pytest.mark.skipif(not MYSQL_URL, reason="EVENTPRO_TEST_MYSQL_URL is not set"),
    ),
]
STRATEGIES = [
    pytest.param("locking", id="locking"),
    pytest.param("conditional", id="conditional"),
    pytest.param("naive", id="naive-negative-control", marks=OVERSELLS),
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'strategies.db'}"
        return
    if request.param == "mariadb":
        assert MYSQL_URL is not None
        url = mysql_database(MYSQL_URL, f"eventpro_sync_{uuid.uuid4().hex[:12]}")
        yield url
        from eventpro.adapters.mysql import MysqlDatabase

        MysqlDatabase(url).drop()
        return
    import psycopg

    assert POSTGRES_URL is not None
    schema = f"eventpro_sync_{uuid.uuid4().hex[:12]}"
    try:
        yield POSTGRES_URL + f"{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    "body",
    [{"section": "Floor", "quantity": 1}, {"seats": ["A1", "A2"]}],
    ids=["general-admission", "same-seats"],
)
def test_a_synchronous_strategy_sells_exactly_the_stock(
    database_url: str, strategy: str, body: dict[str, object]
) -> None:
    env = service_env(
        EVENTPRO_DATABASE_URL=database_url,
        EVENTPRO_QUEUE_URL="memory://",  # a synchronous strategy keeps no line
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_STRATEGY=strategy,
        EVENTPRO_POOL_SIZE="40",  # under the shared PostgreSQL's 100 connections
    )
    with ServerProcess(env, free_port(), workers=0) as server:
        sections = [
            {"name": "Floor", "capacity": TICKETS, "price_cents": 5000},
            {"name": "A", "seats": ["A1", "A2", "A3"], "price_cents": 9000},
        ]
        event_id = create_event(server, "Last tickets", sections)
        statuses = Counter(asyncio.run(stampede(server.base_url, event_id, body, BUYERS)))
        orders = all_orders(server, event_id)
        checked = audit(event_id, env)
        metrics = server.client.get("/metrics").text

    if "seats" in body:
        seats = Counter(label for order in orders for label in order["seats"])  # type: ignore[attr-defined]
        assert max(seats.values()) == 1, f"seats sold twice: {seats}"
        assert len(orders) == 1, f"{len(orders)} orders for the same two seats"
    else:
        sold = sum(int(order["quantity"]) for order in orders)  # type: ignore[call-overload]
        assert sold == TICKETS, f"sold {sold} of {TICKETS} tickets to {len(orders)} orders"
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # answered at once, every one: 201 for the winners, 409 for the others, never a 5xx
    assert statuses[201] == len(orders) and statuses[409] == BUYERS - len(orders), statuses
    waited = re.search(r"^eventpro_pool_waited ([0-9.]+)$", metrics, re.MULTILINE)
    assert waited is not None and float(waited.group(1)) <= BUYERS


def test_a_synchronous_sale_answers_in_the_contract_shape(tmp_path: Path) -> None:
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'shape.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_STRATEGY="conditional",
    )
    with ServerProcess(env, free_port(), workers=0) as server:
        event_id = create_event(server, "One ticket", floor(1))
        path = f"/v1/events/{event_id}/purchases"
        body = {"buyer_id": "ann", "section": "Floor", "quantity": 1}
        first = server.client.post(path, json=body, headers={"Idempotency-Key": "k1"})
        again = server.client.post(path, json=body, headers={"Idempotency-Key": "k1"})
        reused = server.client.post(
            path, json={**body, "buyer_id": "bob"}, headers={"Idempotency-Key": "k1"}
        )
        late = server.client.post(path, json={**body, "buyer_id": "cid"})
        bad = server.client.post(path, json={**body, "quantity": 0})
        orders = all_orders(server, event_id)
    assert first.status_code == 201 and first.json()["status"] == "confirmed"
    assert first.json()["order"]["quantity"] == 1
    assert again.status_code == 201 and again.json() == first.json()  # the retry's answer
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert late.status_code == 409 and late.json()["error"]["code"] == "sold_out"
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "quantity"
    assert [o["buyer_id"] for o in orders] == ["ann"]
