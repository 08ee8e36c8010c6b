"""`SqliteInventoryStore`: events, stock, orders and decisions in one SQLite file.

Every write that takes stock is conditional (`… WHERE remaining >= :qty`, `… AND order_id
IS NULL`) and checks its row count; the CHECK constraint on `remaining` is a second guard.
A batch of decisions is one `BEGIN IMMEDIATE` transaction: all of it or none of it.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import datetime

import orjson

from eventpro.adapters.paging import decode_cursor, page_of, page_of_events
from eventpro.adapters.sqlite.database import SqliteDatabase
from eventpro.adapters.sqlite.rows import event_from_row, order_from_row
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
from eventpro.domain.rules import make_order
from eventpro.ports import Conflict, IdSource, InventoryStore, Page

TAKE_GENERAL = """
UPDATE sections SET remaining = remaining - :qty
WHERE event_id = :event AND name = :section AND remaining >= :qty
"""
# All named seats or none: the count of free ones among them must equal the number asked.
TAKE_NAMED_SEATS = """
UPDATE seats SET order_id = :order
WHERE event_id = :event AND label IN (SELECT value FROM json_each(:labels)) AND order_id IS NULL
  AND (SELECT count(*) FROM seats WHERE event_id = :event
       AND label IN (SELECT value FROM json_each(:labels)) AND order_id IS NULL) = :qty
"""
TAKE_LOWEST_SEATS = """
UPDATE seats SET order_id = :order
WHERE event_id = :event AND label IN (
    SELECT label FROM seats WHERE event_id = :event AND section = :section AND order_id IS NULL
    ORDER BY idx LIMIT :qty)
"""
SEATS_OF_ORDER = "SELECT label FROM seats WHERE event_id = ? AND order_id = ? ORDER BY idx"


class SqliteInventoryStore(InventoryStore):
    capabilities = frozenset({"transactions", "durable"})

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
        if not purchases:
            return DecidedBatch([])
        with self.db.write() as conn:
            known = self._known_decisions(conn, [p.id for p in purchases])
            decisions: list[Decision] = []
            new: list[Decision] = []
            touched: set[tuple[str, str]] = set()
            for purchase in purchases:
                decision = known.get(purchase.id)
                if decision is None:
                    decision = known[purchase.id] = self._take(conn, purchase, now)
                    touched.add((purchase.event_id, purchase.request.section))
                    new.append(decision)
                decisions.append(decision)
            self._record(conn, new, now)
            emptied = {
                section
                for event_id, section in touched
                if conn.execute(
                    "SELECT remaining FROM sections WHERE event_id = ? AND name = ?",
                    (event_id, section),
                ).fetchone()[0]
                == 0
            }
        return DecidedBatch(decisions, emptied)

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

    def _take(self, conn: sqlite3.Connection, purchase: Purchase, now: datetime) -> Decision:
        """Take stock for one purchase with conditional writes, or say why not."""
        request = purchase.request
        order_id = self._ids.new("ord")
        args = {
            "event": purchase.event_id,
            "section": request.section,
            "qty": request.quantity,
            "order": order_id,
        }
        if not conn.execute(TAKE_GENERAL, args).rowcount:
            reason = Reason.SEAT_TAKEN if request.seats else Reason.SOLD_OUT
            return Decision(purchase.id, PurchaseStatus.REJECTED, reason)
        seats: tuple[str, ...] = ()
        if self._is_reserved(conn, purchase.event_id, request.section):
            seats = self._take_seats(conn, purchase, order_id, args)
            if not seats:
                # Give the count back: the named seats were not all free.
                conn.execute(
                    "UPDATE sections SET remaining = remaining + :qty"
                    " WHERE event_id = :event AND name = :section",
                    args,
                )
                return Decision(purchase.id, PurchaseStatus.REJECTED, Reason.SEAT_TAKEN)
        order = make_order(order_id, purchase.event_id, purchase.id, request, seats, now)
        return Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - a section's kind never changes
    def _is_reserved(self, conn: sqlite3.Connection, event_id: str, section: str) -> bool:
        row = conn.execute(
            "SELECT reserved FROM sections WHERE event_id = ? AND name = ?", (event_id, section)
        ).fetchone()
        return bool(row and row[0])

    @staticmethod
    def _take_seats(
        conn: sqlite3.Connection, purchase: Purchase, order_id: str, args: dict[str, object]
    ) -> tuple[str, ...]:
        request = purchase.request
        if request.seats:
            taken = conn.execute(
                TAKE_NAMED_SEATS, {**args, "labels": orjson.dumps(request.seats).decode()}
            ).rowcount
        else:
            taken = conn.execute(TAKE_LOWEST_SEATS, args).rowcount
        if taken != request.quantity:
            if taken:  # `remaining` and the seats disagree: refuse the whole batch
                raise Conflict(f"section {request.section}: seats and remaining disagree")
            return ()
        rows = conn.execute(SEATS_OF_ORDER, (purchase.event_id, order_id)).fetchall()
        return tuple(r[0] for r in rows)

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
