"""`PostgresInventoryStore`: the system of record on PostgreSQL.

A batch of decisions is one transaction and one round trip: `eventpro_decide` (a
PL/pgSQL function, see migrations/0004) takes stock with conditional writes in the
batch's order. Seats are sold under their primary key and a conditional update. A
confirmed decision is its order (unique by purchase); a rejection has its own row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from eventpro.adapters.paging import decode_cursor, page_of_events
from eventpro.adapters.postgres.database import PostgresDatabase
from eventpro.adapters.sql_reads import Rows, SqlReads
from eventpro.domain.model import (
    DecidedBatch,
    Decision,
    Event,
    Inventory,
    Order,
    Purchase,
    PurchaseStatus,
    Reason,
    Section,
)
from eventpro.ports import Conflict, IdSource, Page, StoreError

EVENT_COLUMNS = "id, name, venue, starts_at, sale_opens_at, per_buyer_limit, created_at, paused"
# Columns travel as text joined by US (0x1f), split by the server's string_to_array:
# psycopg dumps a Python list element by element, which cost more than deciding.
SEPARATOR = "\x1f"
CONFIRMED = PurchaseStatus.CONFIRMED
DECIDE = (
    "SELECT * FROM eventpro_decide("
    + ", ".join(["string_to_array(%s, E'\\x1f')"] * 4)
    + ", string_to_array(%s, E'\\x1f')::integer[], string_to_array(%s, E'\\x1f')::bigint[]"
    + ", string_to_array(%s, E'\\x1f'), %s::jsonb, %s)"
)


class PostgresInventoryStore(SqlReads):
    capabilities = frozenset({"durable", "shared"})

    def __init__(self, db: PostgresDatabase, ids: IdSource | None = None) -> None:
        self.db = db
        self._ids = ids or IdSource()

    def create_event(self, event: Event) -> None:
        with self.db.transaction() as conn:
            cur = conn.execute(
                f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (
                    event.id,
                    event.name,
                    event.venue,
                    event.starts_at,
                    event.sale_opens_at,
                    event.per_buyer_limit,
                    event.created_at,
                    event.paused,
                ),
            )
            if cur.rowcount == 0:
                raise Conflict(f"event {event.id} exists")
            with conn.cursor() as many:
                many.executemany(
                    "INSERT INTO sections VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (event.id, s.name, i, s.price_cents, s.capacity, s.capacity, bool(s.seats))
                        for i, s in enumerate(event.sections)
                    ],
                )
                many.executemany(
                    "INSERT INTO seats (event_id, label, section, idx) VALUES (%s, %s, %s, %s)",
                    [
                        (event.id, label, s.name, i)
                        for s in event.sections
                        for i, label in enumerate(s.seats)
                    ],
                )

    def get_inventory(self, event_id: str) -> Inventory | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE id = %s", (event_id,)
            ).fetchone()
            if row is None:
                return None
            sections = conn.execute(
                "SELECT s.name, s.price_cents, s.capacity, s.remaining,"
                " coalesce((SELECT array_agg(t.label ORDER BY t.idx) FROM seats t"
                " WHERE t.event_id = s.event_id AND t.section = s.name), '{}')"
                " FROM sections s WHERE s.event_id = %s ORDER BY s.idx",
                (event_id,),
            ).fetchall()
        event = Event(
            id=row[0],
            name=row[1],
            venue=row[2],
            starts_at=row[3],
            sale_opens_at=row[4],
            per_buyer_limit=row[5],
            sections=tuple(Section(s[0], s[1], s[2], tuple(s[4])) for s in sections),
            created_at=row[6],
            paused=row[7],
        )
        return Inventory(event, {s[0]: s[3] for s in sections})

    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        before = decode_cursor(cursor) if cursor else None
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT seq, id FROM events WHERE %(before)s::bigint IS NULL OR seq < %(before)s"
                " ORDER BY seq DESC LIMIT %(n)s",
                {"before": before, "n": limit + 1},
            ).fetchall()
        return page_of_events(self, rows, limit)

    def set_paused(self, event_id: str, paused: bool) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("UPDATE events SET paused = %s WHERE id = %s", (paused, event_id))
            return cur.rowcount == 1

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        if not purchases:
            return DecidedBatch([])
        order_ids = self._ids.many("ord", len(purchases))
        requests = [p.request for p in purchases]
        columns = [
            [p.id for p in purchases],
            [p.event_id for p in purchases],
            [r.buyer_id for r in requests],
            [r.section for r in requests],
            [str(r.quantity) for r in requests],
            [str(r.amount_cents) for r in requests],
            order_ids,
        ]
        seats = orjson.dumps([r.seats for r in requests]).decode()
        # One statement in autocommit: the function's work is one transaction of its own.
        with self.db.statement() as conn:
            rows = conn.execute(DECIDE, (*map(_joined, columns), seats, now)).fetchall()
        emptied = {row[0] for row in rows if row[1] == "emptied"}  # (section, "emptied")
        # A purchase without a row was confirmed as sent: its order id, no seats, now.
        told = {row[0]: row for row in rows if row[1] != "emptied"}
        decisions = []
        for p, order_id in zip(purchases, order_ids, strict=True):
            row = told.get(p.id)
            if row is None:  # built here, by position: 500 a batch, under the interpreter lock
                r = p.request
                order = Order(
                    order_id, p.event_id, r.buyer_id, p.id, r.section, (), r.quantity,
                    r.amount_cents, now,
                )  # fmt: skip
                decisions.append(Decision(p.id, CONFIRMED, None, order))
            else:
                decisions.append(self._decision(p, row))
        return DecidedBatch(decisions, emptied)

    @staticmethod
    def _decision(purchase: Purchase, row: tuple[Any, ...]) -> Decision:
        purchase_id, status, reason, order_id, seats, created_at = row
        order = None
        if order_id is not None:
            r = purchase.request
            order = Order(
                order_id,
                purchase.event_id,
                r.buyer_id,
                purchase_id,
                r.section,
                tuple(seats),
                r.quantity,
                r.amount_cents,
                created_at,
            )
        return Decision(
            purchase_id, PurchaseStatus(status), Reason(reason) if reason else None, order
        )

    def _rows(self, sql: str, params: Sequence[object]) -> Rows:
        with self.db.transaction() as conn:
            return conn.execute(sql, params).fetchall()

    @staticmethod
    def _order_of(row: Sequence[Any]) -> Order:
        _, id_, event_id, buyer_id, purchase_id, section, seats, quantity, amount, created = row
        return Order(
            id_, event_id, buyer_id, purchase_id, section, tuple(seats), quantity, amount, created
        )

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        self.db.close()


def _joined(values: list[str]) -> str:
    """One column of a batch as text; a value holding the separator would shift the rest."""
    text = SEPARATOR.join(values)
    if text.count(SEPARATOR) != len(values) - 1:
        raise StoreError("a purchase field holds the control character U+001F")
    return text
