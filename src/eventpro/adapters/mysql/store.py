"""`MysqlInventoryStore`: the system of record on MySQL or MariaDB (the incident's kind).

A batch of decisions is one InnoDB transaction. It locks the rows it reads (`FOR
UPDATE`; sections in (event, name) order, each with its seats in label order), so the
stock the domain's `allocate_batch` counts down is the stock; each section is then written
once with a conditional `UPDATE … WHERE remaining >= taken` and each seat with `… AND
order_id IS NULL`, checking row counts, and the CHECK constraint is a third guard.
Times are stored as UTC in DATETIME(6) columns (which hold no zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventpro.adapters.dialects import from_naive_utc, to_naive_utc
from eventpro.adapters.mysql.database import MysqlDatabase
from eventpro.adapters.paging import decode_cursor, page_of_events
from eventpro.adapters.sql_reads import ORDER_COLUMNS, Rows, SqlReads
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
    Section,
)
from eventpro.ports import Conflict, IdSource, Page

EVENT_COLUMNS = "id, name, venue, starts_at, sale_opens_at, per_buyer_limit, created_at, paused"
MARKS_8 = "(%s, %s, %s, %s, %s, %s, %s, %s)"


class MysqlInventoryStore(SqlReads):
    capabilities = frozenset({"durable", "shared"})

    def __init__(self, db: MysqlDatabase, ids: IdSource | None = None) -> None:
        self.db = db
        self._ids = ids or IdSource()

    def create_event(self, event: Event) -> None:
        values = (
            event.id,
            event.name,
            event.venue,
            to_naive_utc(event.starts_at),
            to_naive_utc(event.sale_opens_at),
            event.per_buyer_limit,
            to_naive_utc(event.created_at),
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
            starts_at=from_naive_utc(row[3]),
            sale_opens_at=from_naive_utc(row[4]),
            per_buyer_limit=row[5],
            sections=tuple(
                Section(s[0], s[1], s[2], tuple(labels.get(s[0], ()))) for s in sections
            ),
            created_at=from_naive_utc(row[6]),
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
        """The domain's `allocate_batch` on the stock read under row locks (sections in
        (event, name) order, then seats in label order), written back conditionally."""
        if not purchases:
            return DecidedBatch([])
        with self.db.transaction() as conn:
            known = _known_decisions(conn, [p.id for p in purchases])
            new = new_purchases(purchases, known)
            stocks = _locked_stocks(conn, new)
            before = {key: s.remaining for key, s in stocks.items()}
            batch = allocate_batch(new, stocks, self._ids.many("ord", len(new)), now)
            _take(conn, taken(before, stocks), seats_sold(batch.decisions))
            _record(conn, batch.decisions, now)
        known.update((d.purchase_id, d) for d in batch.decisions)
        return DecidedBatch([known[p.id] for p in purchases], batch.emptied_sections)

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


def _locked_stocks(conn: Connection, new: list[Purchase]) -> dict[StockKey, SectionStock]:
    """The batch's sections and seats, locked in (event, name) order, seats by label."""
    stocks: dict[StockKey, SectionStock] = {}
    for (event_id, section), want in sorted(wanted(new).items()):
        remaining, reserved = conn.exec_driver_sql(
            "SELECT remaining, reserved FROM sections WHERE event_id = %s AND name = %s FOR UPDATE",
            (event_id, section),
        ).one()
        free = None
        if reserved:
            rows: list[Any] = []
            if want.named:
                marks = ", ".join(["%s"] * len(want.named))
                rows += conn.exec_driver_sql(
                    f"SELECT label, idx FROM seats WHERE event_id = %s AND label IN ({marks})"
                    " AND order_id IS NULL ORDER BY label FOR UPDATE",
                    (event_id, *sorted(want.named)),
                ).all()
            rows += conn.exec_driver_sql(
                "SELECT label, idx FROM seats WHERE event_id = %s AND section = %s"
                " AND order_id IS NULL ORDER BY idx LIMIT %s FOR UPDATE",
                (event_id, section, want.lowest),
            ).all()
            free = free_seats(rows)
        stocks[(event_id, section)] = SectionStock(int(remaining), free)
    return stocks


def _take(
    conn: Connection, counts: list[tuple[int, str, str]], seats: list[tuple[str, str, str]]
) -> None:
    """Write what the batch took, each write conditional on the stock being there."""
    for count, event_id, section in counts:
        done = conn.exec_driver_sql(
            "UPDATE sections SET remaining = remaining - %s"
            " WHERE event_id = %s AND name = %s AND remaining >= %s",
            (count, event_id, section, count),
        ).rowcount
        if done != 1:
            raise Conflict(f"section {section}: stock changed under its lock")
    for seat in seats:
        done = conn.exec_driver_sql(
            "UPDATE seats SET order_id = %s WHERE event_id = %s AND label = %s"
            " AND order_id IS NULL",
            seat,
        ).rowcount
        if done != 1:
            raise Conflict(f"seat {seat[2]}: taken under its lock")


def _record(conn: Connection, decisions: list[Decision], now: datetime) -> None:
    """Insert the new decisions and their orders (unique purchase ids guard replays)."""
    stamp = to_naive_utc(now)
    orders = [d.order for d in decisions if d.order is not None]
    if orders:
        conn.exec_driver_sql(
            "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,"
            " quantity, amount_cents, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (o.id, o.event_id, o.buyer_id, o.purchase_id, o.section,
                 orjson.dumps(o.seats).decode(), o.quantity, o.amount_cents, stamp)
                for o in orders
            ],
        )  # fmt: skip
    if decisions:
        conn.exec_driver_sql(
            "INSERT INTO decisions VALUES (%s, %s, %s, %s, %s)",
            [
                (d.purchase_id, d.status.value, d.reason, d.order.id if d.order else None, stamp)
                for d in decisions
            ],
        )


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
        from_naive_utc(created),
    )
