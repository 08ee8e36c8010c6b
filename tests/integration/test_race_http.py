"""Hundreds of concurrent buyers through real HTTP for the last few tickets and seats.

The server runs with eight worker loops deciding batches of one. On the real queue one
batch of an event is in flight at a time (so FCFS is checked); on `memory+unsafe://`, a
queue without that lease, the loops decide the same event at once and race the store
itself over HTTP. The negative control races the deliberately unsafe stores
(read-then-write) the same way and asserts the oversell it must see.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventpro.bootstrap import drop_scope
from tests.backends import backend_url
from tests.support import ServerProcess, all_orders, free_port, service_env, stampede, wait_until

BUYERS = 300
TICKETS = 5
BODIES = pytest.mark.parametrize(
    "body",
    [{"section": "Floor", "quantity": 1}, {"seats": ["A1", "A2"]}],
    ids=["general-admission", "same-seats"],
)
# (store, queue). With the real queue one batch of an event is decided at a time, in
# position order: FCFS is checked. With `memory+unsafe` as the queue, the eight loops
# decide batches of one event at once, so the store itself is raced over HTTP.
SAFE = [
    ("sqlite", "sqlite"),
    ("postgres", "redis"),
    ("mysql", "redis"),
    ("sqlite", "memory+unsafe"),
    ("postgres", "memory+unsafe"),
    ("mysql", "memory+unsafe"),
]
# The deliberately unsafe stores (read-then-write), raced the same way: must oversell.
UNSAFE = [("memory+unsafe", "memory+unsafe"), ("postgres+unsafe", "memory+unsafe")]


def _url(kind: str, tmp_path: Path) -> str:
    if kind.endswith("+unsafe"):
        base = kind.removesuffix("+unsafe")
        url = "memory://" if base == "memory" else backend_url(base, tmp_path)
        scheme, rest = url.split("://", 1)
        return f"{'postgresql' if base == 'postgres' else scheme}+unsafe://{rest}"
    return backend_url(kind, tmp_path)


@contextlib.contextmanager
def _serve(kinds: tuple[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    urls = [_url(kind, tmp_path) for kind in kinds]
    env = service_env(
        EVENTPRO_DATABASE_URL=urls[0],
        EVENTPRO_QUEUE_URL=urls[1],
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_BATCH_SIZE="1",
    )
    try:
        with ServerProcess(env, free_port(), workers=8) as running:
            yield running
    finally:
        for url in urls:
            if not url.startswith(("sqlite", "memory")):
                drop_scope(url.replace("+unsafe", ""))


@pytest.fixture(params=SAFE, ids=["-".join(kinds) for kinds in SAFE])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with _serve(request.param, tmp_path) as running:
        running.fcfs = request.param[1] != "memory+unsafe"  # type: ignore[attr-defined]
        yield running


@pytest.fixture(params=UNSAFE, ids=["-".join(kinds) for kinds in UNSAFE])
def unsafe_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with _serve(request.param, tmp_path) as running:
        yield running


def _sell(server: ServerProcess, body: dict[str, object]) -> tuple[str, list[dict[str, Any]]]:
    """Send BUYERS at once for the last units; wait until all are decided; the orders."""
    created = server.admin.post(
        "/v1/events",
        json={
            "name": "Last tickets",
            "venue": "Club",
            "starts_at": "2030-01-01T20:00:00Z",
            "sections": [
                {"name": "Floor", "capacity": TICKETS, "price_cents": 5000},
                {"name": "A", "seats": ["A1", "A2", "A3"], "price_cents": 9000},
            ],
        },
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    statuses = asyncio.run(stampede(server.base_url, event_id, body, BUYERS))
    assert Counter(statuses) == {202: BUYERS}

    def settled() -> bool:
        return server.client.get(f"/v1/events/{event_id}").json()["queue"]["depth"] == 0

    wait_until(settled, timeout=60)
    return event_id, all_orders(server, event_id)


@BODIES
def test_the_unsafe_stores_are_caught_overselling(unsafe_server: ServerProcess, body) -> None:
    """The negative control: the same race must see the read-then-write store oversell."""
    _, orders = _sell(unsafe_server, body)
    if "seats" in body:
        seats = Counter(label for order in orders for label in order["seats"])
        assert max(seats.values()) > 1, f"no seat sold twice: {seats}"
    else:
        sold = sum(order["quantity"] for order in orders)
        assert sold > TICKETS, f"the race did not catch an oversell: {sold} of {TICKETS} sold"


@BODIES
def test_exactly_the_stock_is_sold_to_concurrent_buyers(server: ServerProcess, body) -> None:
    event_id, orders = _sell(server, body)
    if "seats" in body:
        seats = [label for order in orders for label in order["seats"]]
        assert len(seats) == len(set(seats)), f"seats sold twice: {Counter(seats)}"
        assert len(orders) == 1, f"{len(orders)} orders for the same two seats"
    else:
        sold = sum(order["quantity"] for order in orders)
        assert sold == TICKETS, f"sold {sold} of {TICKETS} tickets to {len(orders)} orders"
    if "section" in body and server.fcfs:  # type: ignore[attr-defined]
        # First come, first served: the winners are exactly the first in line.
        confirmed = server.admin.get(
            f"/v1/events/{event_id}/purchases", params={"status": "confirmed"}
        ).json()["items"]
        assert sorted(p["position"] for p in confirmed) == list(range(1, TICKETS + 1))
    event = server.client.get(f"/v1/events/{event_id}").json()
    remaining = {s["name"]: s["remaining"] for s in event["sections"]}
    assert remaining["Floor" if "section" in body else "A"] == (0 if "section" in body else 1)
