"""`SqliteInventoryStore`: events, stock, orders and decisions in one SQLite file.

A batch of decisions is the domain's `allocate_batch` on the stock read inside the
batch's transaction; what it took is written with conditional writes (`… WHERE remaining
>= :taken`, `… AND order_id IS NULL`) that check their row counts, and the CHECK
constraint on `remaining` is a third guard.
A batch of decisions is one `BEGIN IMMEDIATE` transaction: all of it or none of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

import orjson

from eventpro.adapters.paging import decode_cursor, page_of, page_of_events
from eventpro.adapters.sqlite.database import SqliteDatabase
from eventpro.adapters.sqlite.rows import event_from_row, order_from_row
from eventpro.adapters.stock import free_seats, new_purchases, seats_sold, taken, wanted
from eventpro.domain.allocation import SectionStock, StockKey, allocate_batch
from eventpro.domain.model import (
    DecidedBatch,
    Decision,
    Event,
    Inventory,
    Order,
    Purchase,
    PurchaseStatus,
    Reason,
)
from eventpro.ports import Conflict, IdSource, InventoryStore, Page

TAKE_STOCK = (
    "UPDATE sections SET remaining = remaining - ? WHERE event_id = ? AND name = ?"
    " AND remaining >= ?"
)
TAKE_SEAT = "UPDATE seats SET order_id = ? WHERE event_id = ? AND label = ? AND order_id IS NULL"
NAMED_FREE = (
    "SELECT label, idx FROM seats WHERE event_id = ? AND order_id IS NULL"
    " AND label IN (SELECT value FROM json_each(?))"
)
LOWEST_FREE = (
    "SELECT label, idx FROM seats WHERE event_id = ? AND section = ? AND order_id IS NULL"
    " ORDER BY idx LIMIT ?"
)


class SqliteInventoryStore(InventoryStore):
    capabilities = frozenset({"durable", "shared", "local"})

    def __init__(self, db: SqliteDatabase, ids: IdSource | None = None) -> None:
        self.db = db
        self._ids = ids or IdSource()

    def create_event(self, event: Event) -> None:
        with self.db.write() as conn:
            try:
                conn.execute(
                    "INSERT INTO events (id, name, venue, starts_at, sale_opens_at,"
                    " per_buyer_limit, created_at, paused) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.id,
                        event.name,
                        event.venue,
                        event.starts_at.isoformat(),
                        event.sale_opens_at.isoformat(),
                        event.per_buyer_limit,
                        event.created_at.isoformat(),
                        int(event.paused),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"event {event.id} exists") from exc
            conn.executemany(
                "INSERT INTO sections VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (event.id, s.name, i, s.price_cents, s.capacity, s.capacity, int(bool(s.seats)))
                    for i, s in enumerate(event.sections)
                ],
            )
            conn.executemany(
                "INSERT INTO seats (event_id, label, section, idx) VALUES (?, ?, ?, ?)",
                (
                    (event.id, label, s.name, i)
                    for s in event.sections
                    for i, label in enumerate(s.seats)
                ),
            )

    def get_inventory(self, event_id: str) -> Inventory | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                return None
            sections = conn.execute(
                "SELECT name, price_cents, capacity, remaining, reserved FROM sections"
                " WHERE event_id = ? ORDER BY idx",
                (event_id,),
            ).fetchall()
            seats = conn.execute(
                "SELECT section, label FROM seats WHERE event_id = ? ORDER BY section, idx",
                (event_id,),
            ).fetchall()
        event = event_from_row(row, sections, seats)
        return Inventory(event=event, remaining={s[0]: s[3] for s in sections})

    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        after = decode_cursor(cursor) if cursor else None
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT seq, id FROM events WHERE (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?",
                (after, after, limit + 1),
            ).fetchall()
        return page_of_events(self, rows, limit)

    def set_paused(self, event_id: str, paused: bool) -> bool:
        with self.db.write() as conn:
            cur = conn.execute("UPDATE events SET paused = ? WHERE id = ?", (int(paused), event_id))
            return cur.rowcount == 1

    def seat_map(self, event_id: str, section: str) -> list[tuple[str, bool]]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT label, order_id IS NULL FROM seats WHERE event_id = ? AND section = ?"
                " ORDER BY idx",
                (event_id, section),
            ).fetchall()
        return [(label, bool(free)) for label, free in rows]

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        """The domain's `allocate_batch` on the stock read under the write lock (BEGIN
        IMMEDIATE): nobody else writes until this commits, and the writes are still
        conditional, so a bug here can fail a batch but never oversell."""
        if not purchases:
            return DecidedBatch([])
        with self.db.write() as conn:
            known = self._known_decisions(conn, [p.id for p in purchases])
            new = new_purchases(purchases, known)
            stocks = self._stocks(conn, new)
            before = {key: s.remaining for key, s in stocks.items()}
            batch = allocate_batch(new, stocks, self._ids.many("ord", len(new)), now)
            self._take(conn, taken(before, stocks), seats_sold(batch.decisions))
            self._record(conn, batch.decisions, now)
        known.update((d.purchase_id, d) for d in batch.decisions)
        return DecidedBatch([known[p.id] for p in purchases], batch.emptied_sections)

    @staticmethod
    def _stocks(conn: sqlite3.Connection, new: list[Purchase]) -> dict[StockKey, SectionStock]:
        stocks = {}
        for (event_id, section), want in wanted(new).items():
            remaining, reserved = conn.execute(
                "SELECT remaining, reserved FROM sections WHERE event_id = ? AND name = ?",
                (event_id, section),
            ).fetchone()
            free = None
            if reserved:
                named = orjson.dumps(sorted(want.named)).decode()
                rows = conn.execute(NAMED_FREE, (event_id, named)).fetchall()
                rows += conn.execute(LOWEST_FREE, (event_id, section, want.lowest)).fetchall()
                free = free_seats(rows)
            stocks[(event_id, section)] = SectionStock(remaining, free)
        return stocks

    @staticmethod
    def _take(
        conn: sqlite3.Connection,
        counts: list[tuple[int, str, str]],
        seats: list[tuple[str, str, str]],
    ) -> None:
        """Write what the batch took, each write conditional on the stock being there."""
        for count, event_id, section in counts:
            if conn.execute(TAKE_STOCK, (count, event_id, section, count)).rowcount != 1:
                raise Conflict(f"section {section}: the stock changed under the write lock")
        before = conn.total_changes
        conn.executemany(TAKE_SEAT, seats)
        if conn.total_changes - before != len(seats):
            raise Conflict("a seat sold in this batch was taken under the write lock")

    def _known_decisions(self, conn: sqlite3.Connection, ids: list[str]) -> dict[str, Decision]:
        rows = conn.execute(
            "SELECT d.purchase_id, d.status, d.reason, o.* FROM decisions d"
            " LEFT JOIN orders o ON o.id = d.order_id"
            " WHERE d.purchase_id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(ids).decode(),),
        ).fetchall()
        return {
            row[0]: Decision(
                purchase_id=row[0],
                status=PurchaseStatus(row[1]),
                reason=Reason(row[2]) if row[2] else None,
                order=order_from_row(row[3:]) if row[3] is not None else None,
            )
            for row in rows
        }

    @staticmethod
    def _record(conn: sqlite3.Connection, decisions: list[Decision], now: datetime) -> None:
        """Insert the new decisions and their orders (unique purchase ids guard replays)."""
        stamp = now.isoformat()
        orders = [d.order for d in decisions if d.order is not None]
        conn.executemany(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?)",
            [
                (d.purchase_id, d.status.value, d.reason, d.order.id if d.order else None, stamp)
                for d in decisions
            ],
        )
        conn.executemany(
            "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,"
            " quantity, amount_cents, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    o.id,
                    o.event_id,
                    o.buyer_id,
                    o.purchase_id,
                    o.section,
                    orjson.dumps(o.seats).decode(),
                    o.quantity,
                    o.amount_cents,
                    o.created_at.isoformat(),
                )
                for o in orders
            ],
        )

    def get_order(self, order_id: str) -> Order | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return order_from_row(row) if row else None

    def get_orders(self, order_ids: Sequence[str]) -> dict[str, Order]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM orders WHERE id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(order_ids)).decode(),),
            ).fetchall()
        return {order.id: order for order in map(order_from_row, rows)}

    def list_orders(self, event_id: str, limit: int, cursor: str | None) -> Page[Order]:
        after = decode_cursor(cursor) if cursor else 0
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM orders WHERE event_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (event_id, after, limit + 1),
            ).fetchall()
        return page_of(rows, limit, order_from_row)

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        self.db.close()
