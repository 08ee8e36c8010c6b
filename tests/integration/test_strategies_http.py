"""The synchronous strategies raced through real HTTP, on SQLite, PostgreSQL and MariaDB.

`serve --strategy locking|conditional` decides each purchase inside its request: 300
buyers released at one instant for the last tickets (or the same two seats) get `201`
or `409` at once, and exactly the stock is sold. `naive` (the incident's read, check,
write back) is the negative control: the same race must see it oversell, and the audit
must report it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventpro.bootstrap import drop_scope
from tests.backends import backend_url
from tests.support import (
    ServerProcess,
    all_orders,
    audit,
    create_event,
    floor,
    free_port,
    service_env,
    stampede,
)

BUYERS = 300
TICKETS = 5
BODIES = pytest.mark.parametrize(
    "body",
    [{"section": "Floor", "quantity": 1}, {"seats": ["A1", "A2"]}],
    ids=["general-admission", "same-seats"],
)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = backend_url(request.param, tmp_path)
    try:
        yield url
    finally:
        if request.param != "sqlite":
            drop_scope(url)


@dataclass
class Race:
    statuses: Counter[int]
    orders: list[dict[str, Any]]
    audit: subprocess.CompletedProcess[str]
    metrics: str

    def sold(self) -> int:
        return sum(int(order["quantity"]) for order in self.orders)

    def seats(self) -> Counter[str]:
        return Counter(label for order in self.orders for label in order["seats"])


def _race(database_url: str, strategy: str, body: dict[str, object]) -> Race:
    """BUYERS released at one instant against `serve --strategy STRATEGY`; then the audit."""
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
        metrics = server.client.get("/metrics").text
    checked = audit(event_id, {**env, "COLUMNS": "200"})
    return Race(statuses, orders, checked, metrics)


@pytest.mark.parametrize("strategy", ["locking", "conditional"])
@BODIES
def test_a_synchronous_strategy_sells_exactly_the_stock(
    database_url: str, strategy: str, body: dict[str, object]
) -> None:
    race = _race(database_url, strategy, body)
    if "seats" in body:
        assert max(race.seats().values()) == 1, f"seats sold twice: {race.seats()}"
        assert len(race.orders) == 1, f"{len(race.orders)} orders for the same two seats"
    else:
        assert race.sold() == TICKETS, f"sold {race.sold()} of {TICKETS} tickets"
    assert race.audit.returncode == 0, race.audit.stdout + race.audit.stderr
    # answered at once, every one: 201 for the winners, 409 for the others, never a 5xx
    statuses = race.statuses
    assert statuses[201] == len(race.orders) and statuses[409] == BUYERS - len(race.orders)
    waited = re.search(r"^eventpro_pool_waited ([0-9.]+)$", race.metrics, re.MULTILINE)
    assert waited is not None and float(waited.group(1)) <= BUYERS


@BODIES
def test_naive_is_caught_overselling(database_url: str, body: dict[str, object]) -> None:
    """The negative control: the same race must see the incident's read-then-write
    oversell, and the audit must report it from the stored data."""
    race = _race(database_url, "naive", body)
    if "seats" in body:
        assert max(race.seats().values()) > 1, f"no seat sold twice: {race.seats()}"
    else:
        assert race.sold() > TICKETS, f"the race did not catch naive: {race.sold()} sold"
    assert race.audit.returncode == 1
    assert re.search(r"never oversold, no seat twice\s*│\s*BROKEN", race.audit.stdout)


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
