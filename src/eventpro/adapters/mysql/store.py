"""`MysqlInventoryStore`: the system of record on MySQL or MariaDB (the incident's kind).

A batch of decisions is one InnoDB transaction. It locks the batch's section rows first
(`FOR UPDATE`, in (event, name) order), so the stock counted down in Python is the stock;
each section is then written once with a conditional `UPDATE … WHERE remaining >=
taken`, and the CHECK constraint is a second guard. Seats are locked in label order and
taken with `… AND order_id IS NULL`, checking the row count: all named seats or none.
Times are stored as UTC in DATETIME(6) columns (which hold no zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventpro.adapters.mysql.database import MysqlDatabase
from eventpro.adapters.paging import decode_cursor, page_of_events
from eventpro.adapters.sql_reads import ORDER_COLUMNS, Rows, SqlReads
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
from eventpro.domain.rules import make_order
from eventpro.ports import Conflict, IdSource, Page

EVENT_COLUMNS = "id, name, venue, starts_at, sale_opens_at, per_buyer_limit, created_at, paused"
MARKS_8 = "(%s, %s, %s, %s, %s, %s, %s, %s)"


def to_db(moment: datetime) -> datetime:
    """A DATETIME value: the moment in UTC, without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


class MysqlInventoryStore(SqlReads):
    capabilities = frozenset({"transactions", "durable", "shared"})

    def __init__(self, db: MysqlDatabase, ids: IdSource | None = None) -> None:
        self.db = db
        self._ids = ids or IdSource()

    def create_event(self, event: Event) -> None:
        values = (
            event.id,
            event.name,
            event.venue,
            to_db(event.starts_at),
            to_db(event.sale_opens_at),
            event.per_buyer_limit,
            to_db(event.created_at),
            event.paused,
        )
        with self.db.transaction() as conn:
            try:
                conn.exec_driver_sql(
                    f"INSERT INTO events ({EVENT_COLUMNS}) VALUES {MARKS_8}", values
                )
            except sa.exc.IntegrityError as exc:
                raise Conflict(f"event {event.id} exists") from exc
            conn.exec_driver_sql(
                "INSERT INTO sections VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (event.id, s.name, i, s.price_cents, s.capacity, s.capacity, bool(s.seats))
                    for i, s in enumerate(event.sections)
                ],
            )
            seats = [
                (event.id, label, s.name, i)
                for s in event.sections
                for i, label in enumerate(s.seats)
            ]
            if seats:
                conn.exec_driver_sql(
                    "INSERT INTO seats (event_id, label, section, idx) VALUES (%s, %s, %s, %s)",
                    seats,
                )

    def get_inventory(self, event_id: str) -> Inventory | None:
        with self.db.transaction() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE id = %s", (event_id,)
            ).first()
            if row is None:
                return None
            sections = conn.exec_driver_sql(
                "SELECT name, price_cents, capacity, remaining FROM sections"
                " WHERE event_id = %s ORDER BY idx",
                (event_id,),
            ).all()
            seats = conn.exec_driver_sql(
                "SELECT section, label FROM seats WHERE event_id = %s ORDER BY section, idx",
                (event_id,),
            ).all()
        labels: dict[str, list[str]] = {}
        for section, label in seats:
            labels.setdefault(section, []).append(label)
        event = Event(
            id=row[0],
            name=row[1],
            venue=row[2],
            starts_at=from_db(row[3]),
            sale_opens_at=from_db(row[4]),
            per_buyer_limit=row[5],
            sections=tuple(
                Section(s[0], s[1], s[2], tuple(labels.get(s[0], ()))) for s in sections
            ),
            created_at=from_db(row[6]),
            paused=bool(row[7]),
        )
        return Inventory(event, {s[0]: s[3] for s in sections})

    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        before = decode_cursor(cursor) if cursor else None
        with self.db.transaction() as conn:
            rows = conn.exec_driver_sql(
                "SELECT seq, id FROM events WHERE %s IS NULL OR seq < %s"
                " ORDER BY seq DESC LIMIT %s",
                (before, before, limit + 1),
            ).all()
        return page_of_events(self, rows, limit)

    def set_paused(self, event_id: str, paused: bool) -> bool:
        with self.db.transaction() as conn:
            found = conn.exec_driver_sql("SELECT 1 FROM events WHERE id = %s", (event_id,)).first()
            conn.exec_driver_sql("UPDATE events SET paused = %s WHERE id = %s", (paused, event_id))
            return found is not None  # rowcount counts changed rows, not matched ones

    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        if not purchases:
            return DecidedBatch([])
        with self.db.transaction() as conn:
            known = _known_decisions(conn, [p.id for p in purchases])
            batch = _Batch(conn, purchases)
            decisions: list[Decision] = []
            for purchase in purchases:
                decision = known.get(purchase.id)
                if decision is None:
                    decision = known[purchase.id] = batch.take(purchase, self._ids.new("ord"), now)
                    batch.new.append(decision)
                decisions.append(decision)
            batch.write(now)
        return DecidedBatch(decisions, batch.emptied())

    def _rows(self, sql: str, params: Sequence[object]) -> Rows:
        with self.db.transaction() as conn:
            return conn.exec_driver_sql(sql, tuple(params)).all()

    @staticmethod
    def _order_of(row: Sequence[Any]) -> Order:
        return _order(row)

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        self.db.close()


class _Batch:
    """One batch's transaction: its sections locked, their stock counted down here."""

    def __init__(self, conn: Connection, purchases: Sequence[Purchase]) -> None:
        self.conn = conn
        self.new: list[Decision] = []
        keys = sorted({(p.event_id, p.request.section) for p in purchases})
        pairs = ", ".join(["(%s, %s)"] * len(keys))
        rows = conn.exec_driver_sql(
            "SELECT event_id, name, remaining, reserved FROM sections"
            f" WHERE (event_id, name) IN ({pairs}) ORDER BY event_id, name FOR UPDATE",
            tuple(value for key in keys for value in key),
        ).all()
        self.stock = {(r[0], r[1]): int(r[2]) for r in rows}
        self.reserved = {(r[0], r[1]) for r in rows if r[3]}
        self.taken = dict.fromkeys(self.stock, 0)

    def take(self, purchase: Purchase, order_id: str, now: datetime) -> Decision:
        """Take stock for one purchase, or say why not."""
        request = purchase.request
        key = (purchase.event_id, request.section)
        refused = Reason.SEAT_TAKEN if request.seats else Reason.SOLD_OUT
        if self.stock.get(key, 0) < request.quantity:
            return Decision(purchase.id, PurchaseStatus.REJECTED, refused)
        seats: tuple[str, ...] = ()
        if key in self.reserved:
            seats = self._take_seats(purchase, order_id)
            if not seats:
                return Decision(purchase.id, PurchaseStatus.REJECTED, Reason.SEAT_TAKEN)
        self.stock[key] -= request.quantity
        self.taken[key] += request.quantity
        order = make_order(order_id, purchase.event_id, purchase.id, request, seats, now)
        return Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order)

    def _take_seats(self, purchase: Purchase, order_id: str) -> tuple[str, ...]:
        """The seats given to the order: those named if all are free, else the lowest
        free ones of the section; () if the named ones are not all free."""
        request = purchase.request
        if request.seats:
            marks = ", ".join(["%s"] * len(request.seats))
            chosen = [
                r[0]
                for r in self.conn.exec_driver_sql(
                    f"SELECT label FROM seats WHERE event_id = %s AND label IN ({marks})"
                    " AND order_id IS NULL ORDER BY label FOR UPDATE",
                    (purchase.event_id, *request.seats),
                )
            ]
            if len(chosen) != len(request.seats):
                return ()
        else:
            chosen = [
                r[0]
                for r in self.conn.exec_driver_sql(
                    "SELECT label FROM seats WHERE event_id = %s AND section = %s"
                    " AND order_id IS NULL ORDER BY idx LIMIT %s FOR UPDATE",
                    (purchase.event_id, request.section, request.quantity),
                )
            ]
        marks = ", ".join(["%s"] * len(chosen))
        took = self.conn.exec_driver_sql(
            f"UPDATE seats SET order_id = %s WHERE event_id = %s AND label IN ({marks})"
            " AND order_id IS NULL",
            (order_id, purchase.event_id, *chosen),
        ).rowcount
        if took != request.quantity:  # `remaining` and the seats disagree: refuse the batch
            raise Conflict(f"section {request.section}: seats and remaining disagree")
        rows = self.conn.exec_driver_sql(
            "SELECT label FROM seats WHERE event_id = %s AND order_id = %s ORDER BY idx",
            (purchase.event_id, order_id),
        )
        return tuple(r[0] for r in rows)

    def write(self, now: datetime) -> None:
        """Write each section once, conditionally, then the orders and the decisions."""
        for (event_id, name), taken in self.taken.items():
            if not taken:
                continue
            done = self.conn.exec_driver_sql(
                "UPDATE sections SET remaining = remaining - %s"
                " WHERE event_id = %s AND name = %s AND remaining >= %s",
                (taken, event_id, name, taken),
            ).rowcount
            if done != 1:
                raise Conflict(f"section {name}: stock changed under its lock")
        stamp = to_db(now)
        orders = [d.order for d in self.new if d.order is not None]
        if orders:
            self.conn.exec_driver_sql(
                "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,"
                " quantity, amount_cents, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (o.id, o.event_id, o.buyer_id, o.purchase_id, o.section,
                     orjson.dumps(o.seats).decode(), o.quantity, o.amount_cents, stamp)
                    for o in orders
                ],
            )  # fmt: skip
        if self.new:
            self.conn.exec_driver_sql(
                "INSERT INTO decisions VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        d.purchase_id,
                        d.status.value,
                        d.reason,
                        d.order.id if d.order else None,
                        stamp,
                    )
                    for d in self.new
                ],
            )

    def emptied(self) -> set[str]:
        return {name for (_, name), left in self.stock.items() if left == 0}


def _known_decisions(conn: Connection, ids: list[str]) -> dict[str, Decision]:
    marks = ", ".join(["%s"] * len(ids))
    rows = conn.exec_driver_sql(
        f"SELECT d.purchase_id, d.status, d.reason, o.{ORDER_COLUMNS.replace(', ', ', o.')}"
        f" FROM decisions d LEFT JOIN orders o ON o.id = d.order_id"
        f" WHERE d.purchase_id IN ({marks})",
        tuple(ids),
    ).all()
    return {
        row[0]: Decision(
            purchase_id=row[0],
            status=PurchaseStatus(row[1]),
            reason=Reason(row[2]) if row[2] else None,
            order=_order(row[3:]) if row[4] is not None else None,
        )
        for row in rows
    }


def _order(row: Sequence[Any]) -> Order:
    _, id_, event_id, buyer_id, purchase_id, section, seats, quantity, amount, created = row
    return Order(
        id_,
        event_id,
        buyer_id,
        purchase_id,
        section,
        tuple(orjson.loads(seats)),
        quantity,
        amount,
        from_db(created),
    )
