"""PostgreSQL migrations: applied in order, recorded, safe twice and from two processes at
once, and they carry the data of earlier versions forward."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources

import psycopg
import pytest

from eventpro.adapters.postgres import PostgresDatabase, PostgresInventoryStore
from eventpro.domain.model import Purchase, PurchaseRequest, PurchaseStatus, Reason

POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="EVENTPRO_TEST_POSTGRES_URL is not set")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def schema() -> Iterator[str]:
    assert POSTGRES_URL
    name = f"eventpro_migrate_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _url(schema: str) -> str:
    return f"{POSTGRES_URL}{'&' if '?' in str(POSTGRES_URL) else '?'}schema={schema}"


def _scripts() -> list[str]:
    folder = resources.files("eventpro.adapters.postgres").joinpath("migrations")
    return sorted(f.name for f in folder.iterdir())


def test_two_processes_migrating_at_once_apply_each_version_once(schema: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            PostgresDatabase(_url(schema)).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    PostgresDatabase(_url(schema)).close()  # and once more, later
    assert POSTGRES_URL
    with psycopg.connect(POSTGRES_URL) as conn:
        rows = conn.execute(
            f'SELECT version, name FROM "{schema}".eventpro_migrations ORDER BY version'
        ).fetchall()
    assert rows == list(enumerate(_scripts(), start=1))


def test_decisions_of_version_3_survive_the_move_to_rejections(schema: str) -> None:
    """Before 0004 every decision had a `decisions` row; after it a confirmed decision is
    its order and a rejection its `rejections` row: deciding again returns both as stored."""
    assert POSTGRES_URL
    folder = resources.files("eventpro.adapters.postgres").joinpath("migrations")
    with psycopg.connect(POSTGRES_URL, options=f"-c search_path={schema}") as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            "CREATE TABLE eventpro_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name in enumerate(_scripts()[:3], start=1):
            conn.execute(folder.joinpath(name).read_text().encode())
            conn.execute("INSERT INTO eventpro_migrations VALUES (%s, %s)", (version, name))
        conn.execute(
            "INSERT INTO events (id, name, venue, starts_at, sale_opens_at, per_buyer_limit,"
            " created_at) VALUES ('evt_1', 'Old night', 'Hall', %s, %s, 4, %s)",
            (NOW, NOW, NOW),
        )
        conn.execute("INSERT INTO sections VALUES ('evt_1', 'Floor', 0, 100, 2, 1, false)")
        conn.execute(
            "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats, quantity,"
            " amount_cents, created_at) VALUES ('ord_1', 'evt_1', 'ann', 'pur_1', 'Floor',"
            " '{}', 1, 100, %s)",
            (NOW,),
        )
        conn.execute(
            "INSERT INTO decisions VALUES ('pur_1', 'confirmed', NULL, 'ord_1', %s),"
            " ('pur_2', 'rejected', 'sold_out', NULL, %s)",
            (NOW, NOW),
        )
    store = PostgresInventoryStore(PostgresDatabase(_url(schema)))
    try:
        again = [_purchase("pur_1", "ann"), _purchase("pur_2", "bob")]
        confirmed, rejected = store.decide(again, NOW).decisions
        assert confirmed.status is PurchaseStatus.CONFIRMED and confirmed.order is not None
        assert confirmed.order.id == "ord_1"
        assert rejected.status is PurchaseStatus.REJECTED and rejected.reason is Reason.SOLD_OUT
        inventory = store.get_inventory("evt_1")
        assert inventory is not None and inventory.remaining == {
            "Floor": 1
        }  # bob was refused once: not sold now
    finally:
        store.close()


def _purchase(purchase_id: str, buyer: str) -> Purchase:
    request = PurchaseRequest(buyer, "Floor", 1, amount_cents=100)
    return Purchase(purchase_id, "evt_1", request, PurchaseStatus.QUEUED, 1, None, NOW)
