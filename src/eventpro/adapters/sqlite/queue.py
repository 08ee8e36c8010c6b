"""`SqliteQueue`: admission, the line and the admission log in the same SQLite file.

A group of admissions is one `BEGIN IMMEDIATE` transaction (group commit). Leases are
taken per event (the `lines` row), so one batch of an event is in flight at a time and
decisions follow positions; an expired event lease makes its entries deliverable again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

import orjson

from eventpro.adapters.paging import decode_cursor, page_of
from eventpro.adapters.sqlite.database import SqliteDatabase
from eventpro.adapters.sqlite.rows import (
    PURCHASE_COLUMNS,
    Row,
    purchase_from_row,
    purchase_to_row,
)
from eventpro.domain.model import Decision, Purchase, PurchaseStatus, Reason
from eventpro.ports import (
    Admission,
    Admitted,
    DeadLetter,
    Delivery,
    IdSource,
    Page,
    PurchaseQueue,
)

# A group's purchases, one `purchase_to_row` tuple each, in its order. With executemany:
# from one JSON array, each of the 14 `value ->> i` parsed the row again (docs/perf.md).
INSERT_PURCHASES = (
    f"INSERT INTO purchases ({PURCHASE_COLUMNS.removeprefix('seq, ')})"
    f" VALUES ({', '.join('?' * 14)})"
)
# The least recently served event with requests ready and no batch in flight.
NEXT_EVENT = """
SELECT event_id FROM lines WHERE ready > 0 AND leased_until <= :now
ORDER BY last_leased LIMIT 1
"""
SELECT_PURCHASES = "SELECT " + ", ".join(f"p.{c.strip()}" for c in PURCHASE_COLUMNS.split(","))


class SqliteQueue(PurchaseQueue):
    capabilities = frozenset({"durable", "shared", "local"})

    def __init__(self, db: SqliteDatabase, ids: IdSource | None = None) -> None:
        self.db = db
        self._ids = ids or IdSource()

    # -- admission ---------------------------------------------------------------------

    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        with self.db.write() as conn:
            group = _AdmissionGroup(conn, admissions)
            results = [group.admit(a) for a in admissions]
            group.flush()
        return results

    # -- the line ----------------------------------------------------------------------

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        clock = now.timestamp()
        lease_id = self._ids.new("lease")
        # Losing a lease to a power cut is harmless: the requests are simply leased again.
        with self.db.write(durable=False) as conn:
            found = self._continued(conn, after) if after else self._next_event(conn, clock)
            if found is None:
                return []
            event_id, through, last_leased = found
            rows = conn.execute(
                f"{SELECT_PURCHASES}, l.attempts FROM line l JOIN purchases p"
                " ON p.id = l.purchase_id WHERE l.event_id = ? AND l.dead = 0"
                " AND l.position > ? ORDER BY l.position LIMIT ?",
                (event_id, through, max_items),
            ).fetchall()
            if not rows:
                return []
            last = rows[-1][8]  # position
            conn.execute(
                "UPDATE line SET attempts = attempts + 1, lease_id = ?"
                " WHERE event_id = ? AND dead = 0 AND position > ? AND position <= ?",
                (lease_id, event_id, through, last),
            )
            conn.execute(
                "UPDATE lines SET lease_id = ?, leased_until = ?, last_leased = ?,"
                " leased_through = ? WHERE event_id = ?",
                (lease_id, clock + visibility_timeout, last_leased, last, event_id),
            )
        return [Delivery(purchase_from_row(r[:-1]), r[-1] + 1, lease_id) for r in rows]

    @staticmethod
    def _next_event(conn: sqlite3.Connection, clock: float) -> tuple[str, int, float] | None:
        """The event a fresh lease takes, from the start of its line."""
        row = conn.execute(NEXT_EVENT, {"now": clock}).fetchone()
        return None if row is None else (row[0], 0, time.time())

    @staticmethod
    def _continued(conn: sqlite3.Connection, after: str) -> tuple[str, int, float] | None:
        """The event of lease `after`, if it may be continued past the end of its batch."""
        row = conn.execute(
            "SELECT event_id, leased_through, last_leased FROM lines WHERE lease_id = ?",
            (after,),
        ).fetchone()
        if row is None:
            return None
        outside = conn.execute(
            "SELECT 1 FROM line WHERE event_id = ? AND dead = 0 AND position <= ?"
            " AND lease_id IS NOT ? LIMIT 1",
            (row[0], row[1], after),
        ).fetchone()
        return None if outside else (row[0], row[1], row[2])

    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        if not deliveries:
            return
        by_id = {d.purchase_id: d for d in decisions}
        purchases = {d.purchase.id: d.purchase for d in deliveries}
        # Not fsynced on its own: a lost completion is redelivered, and deciding again
        # returns the stored (durable) decision.
        with self.db.write(durable=False) as conn:
            # Only requests still in line are completed: a redelivered batch changes nothing.
            removed = conn.execute(
                "DELETE FROM line WHERE purchase_id IN (SELECT value FROM json_each(?))"
                " RETURNING purchase_id, dead",
                (orjson.dumps(list(purchases)).decode(),),
            ).fetchall()
            _record_decisions(conn, [(purchases[pid], by_id[pid]) for pid, _ in removed])
            # each event's counters once, not once per request: a batch is one event
            left: dict[str, list[int]] = {}  # event -> [removed, ready removed, top]
            for pid, dead in removed:
                purchase = purchases[pid]
                counts = left.setdefault(purchase.event_id, [0, 0, 0])
                counts[0] += 1
                counts[1] += 0 if dead else 1
                counts[2] = max(counts[2], purchase.position or 0)
            conn.executemany(
                "UPDATE lines SET undecided = undecided - ?, ready = ready - ?,"
                " decided_top = max(decided_top, ?) WHERE event_id = ?",
                [(*counts, event_id) for event_id, counts in left.items()],
            )
            _release_if_done(conn, deliveries[0])

    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        purchase = delivery.purchase
        dead = delivery.attempt >= max_attempts
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE line SET lease_id = NULL, last_error = ?, dead = ?, failed_at = ?"
                " WHERE purchase_id = ? AND dead = 0",
                (error, int(dead), now.isoformat() if dead else None, purchase.id),
            )
            if dead and cur.rowcount:
                conn.execute(
                    "UPDATE lines SET ready = ready - 1, dead_moves = dead_moves + 1"
                    " WHERE event_id = ?",
                    (purchase.event_id,),
                )
                conn.execute("UPDATE purchases SET status = 'failed' WHERE id = ?", (purchase.id,))
            _release_if_done(conn, delivery)
        return dead and cur.rowcount == 1

    def mark_sold_out(self, event_id: str, sections: set[str]) -> None:
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO sold_out VALUES (?, ?)", [(event_id, s) for s in sections]
            )

    # -- reads -------------------------------------------------------------------------

    def get_purchase(self, purchase_id: str) -> Purchase | None:
        with self.db.read() as conn:
            row = conn.execute(
                f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE id = ?", (purchase_id,)
            ).fetchone()
        return purchase_from_row(row) if row else None

    def ahead(self, purchase: Purchase) -> int:
        """O(log n): counters above the highest decided position, the few left behind
        below it (see migrations/0003)."""
        with self.db.read() as conn:
            return _ahead(conn, purchase.event_id, purchase.position)

    def watch(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        """One read snapshot: the purchases by id, and `ahead` of each undecided one, in
        O(log n) each as `ahead` counts it."""
        found: list[Purchase] = []
        with self.db.read() as conn:
            for start in range(0, len(purchase_ids), WATCH_CHUNK):
                chunk = purchase_ids[start : start + WATCH_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE id IN ({marks})", chunk
                ).fetchall()
                found.extend(purchase_from_row(row) for row in rows)
            lines = _Lines(conn)  # each event's counters read once, not once per purchase
            return {
                p.id: (p, _ahead(conn, p.event_id, p.position, lines) if _undecided(p) else 0)
                for p in found
            }

    def depth(self, event_id: str) -> int:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT undecided FROM lines WHERE event_id = ?", (event_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def line_mark(self, event_id: str) -> Hashable:
        """The line's counters: an admission moves the next position, a decision the
        undecided count, a dead letter or a redrive the count of such moves."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT undecided, dead_moves, next_position FROM lines WHERE event_id = ?",
                (event_id,),
            ).fetchone()
        return tuple(row) if row else None

    def list_purchases(
        self, event_id: str, status: PurchaseStatus | None, limit: int, cursor: str | None
    ) -> Page[Purchase]:
        after = decode_cursor(cursor) if cursor else 0
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE event_id = ? AND seq > ?"
                " AND (? IS NULL OR status = ?) ORDER BY seq LIMIT ?",
                (event_id, after, status, status, limit + 1),
            ).fetchall()
        return page_of(rows, limit, purchase_from_row)

    def dead_letters(
        self, event_id: str | None, limit: int, cursor: str | None
    ) -> Page[DeadLetter]:
        after = decode_cursor(cursor) if cursor else 0
        with self.db.read() as conn:
            rows = conn.execute(
                f"{SELECT_PURCHASES}, l.attempts, l.last_error, l.failed_at FROM line l"
                " JOIN purchases p ON p.id = l.purchase_id WHERE l.dead = 1"
                " AND (? IS NULL OR l.event_id = ?) AND p.seq > ? ORDER BY p.seq LIMIT ?",
                (event_id, event_id, after, limit + 1),
            ).fetchall()
        return page_of(rows, limit, _dead_letter)

    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        ids = orjson.dumps(list(purchase_ids or [])).decode()
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE line SET dead = 0, attempts = 0, lease_id = NULL, last_error = NULL,"
                " failed_at = NULL WHERE dead = 1 AND ((? IS NOT NULL AND event_id = ?)"
                " OR purchase_id IN (SELECT value FROM json_each(?)))"
                " RETURNING event_id, purchase_id",
                (event_id, event_id, ids),
            ).fetchall()
            conn.executemany(
                "UPDATE lines SET ready = ready + 1, dead_moves = dead_moves + 1"
                " WHERE event_id = ?",
                [(r[0],) for r in rows],
            )
            conn.executemany(
                "UPDATE purchases SET status = 'queued' WHERE id = ?", [(r[1],) for r in rows]
            )
        return len(rows)

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        self.db.close()


def _record_decisions(conn: sqlite3.Connection, done: list[tuple[Purchase, Decision]]) -> None:
    """Write each status to the log; give a rejected request's tickets back to its buyer."""
    conn.executemany(
        "UPDATE purchases SET status = ?, reason = ?, order_id = ? WHERE id = ?",
        [
            (
                d.status.value,
                d.reason.value if d.reason else None,
                d.order.id if d.order else None,
                p.id,
            )
            for p, d in done
        ],
    )
    conn.executemany(
        "UPDATE holdings SET held = held - ? WHERE event_id = ? AND buyer_id = ?",
        [
            (p.request.quantity, p.event_id, p.buyer_id)
            for p, d in done
            if d.status is PurchaseStatus.REJECTED
        ],
    )


class _Lines(dict[str, tuple[int, int, int] | None]):
    """The counters (undecided, next position, highest decided) of each event's line, read
    at most once per snapshot."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self.conn = conn

    def __missing__(self, event_id: str) -> tuple[int, int, int] | None:
        row = self.conn.execute(
            "SELECT undecided, next_position, decided_top FROM lines WHERE event_id = ?",
            (event_id,),
        ).fetchone()
        self[event_id] = row
        return row  # type: ignore[no-any-return]


def _ahead(
    conn: sqlite3.Connection, event_id: str, position: int | None, lines: _Lines | None = None
) -> int:
    """Undecided requests of the event before `position`: from the line's counters above
    its highest decided position, by counting the few left behind below it."""
    if position is None:
        return 0
    row = (lines if lines is not None else _Lines(conn))[event_id]
    if row is None:
        return 0
    undecided, next_position, top = row
    if position > top:  # every position from here on is undecided: no scan
        return max(0, int(undecided) - (int(next_position) - position))
    (count,) = conn.execute(
        "SELECT count(*) FROM line WHERE event_id = ? AND position < ?", (event_id, position)
    ).fetchone()
    return int(count)


def _dead_letter(row: Row) -> DeadLetter:
    purchase = purchase_from_row(row[:-3])
    return DeadLetter(purchase, row[-3], row[-2] or "", datetime.fromisoformat(row[-1]))


def _release_if_done(conn: sqlite3.Connection, delivery: Delivery) -> None:
    """End the event lease once none of its leased requests is left undecided.

    Only the event's current lease can end (a continuing lease has replaced an older
    one), and its requests all lie at or below `leased_through`: the scan stops there,
    instead of running over the whole undecided line of the event."""
    event_id, lease_id = delivery.purchase.event_id, delivery.lease_id
    current = conn.execute(
        "SELECT leased_through FROM lines WHERE event_id = ? AND lease_id = ?",
        (event_id, lease_id),
    ).fetchone()
    if current is None:
        return
    left = conn.execute(
        "SELECT 1 FROM line WHERE event_id = ? AND position <= ? AND lease_id = ?"
        " AND dead = 0 LIMIT 1",
        (event_id, current[0], lease_id),
    ).fetchone()
    if left is None:
        conn.execute(
            "UPDATE lines SET leased_until = 0, lease_id = NULL"
            " WHERE event_id = ? AND lease_id = ?",
            (event_id, lease_id),
        )


class _AdmissionGroup:
    """One group commit: the rules of `PurchaseQueue.admit`, applied request by request.

    A constant number of statements per group, however large: what the rules read (the
    buyers' holdings, earlier idempotency keys, sold-out sections) is read for the whole
    group first, the rules run in Python, and each table is written by one statement
    over a JSON array. Every statement step releases and retakes the interpreter lock,
    and the writer thread competes for it with a busy event loop: three steps per request
    made a group of 64 take 10 ms. It runs inside the group's write transaction
    (BEGIN IMMEDIATE), so what it read cannot change before it writes.
    """

    def __init__(self, conn: sqlite3.Connection, admissions: Sequence[Admission]) -> None:
        self.conn = conn
        self.next_position: dict[str, int] = {}
        self.sold_out: dict[str, set[str]] = {}
        self.held = self._holdings(admissions)
        self.by_key = self._earlier_keys(admissions)
        self.purchases: list[Purchase] = []
        self.queued: list[Purchase] = []

    def _holdings(self, admissions: Sequence[Admission]) -> dict[tuple[str, str], int]:
        buyers = {(a.event_id, a.request.buyer_id) for a in admissions if not a.rejected_for}
        if not buyers:
            return {}
        rows = self.conn.execute(
            "SELECT event_id, buyer_id, held FROM holdings WHERE (event_id, buyer_id) IN"
            " (SELECT value ->> 0, value ->> 1 FROM json_each(?))",
            (_json(sorted(buyers)),),
        ).fetchall()
        return {(event_id, buyer): held for event_id, buyer, held in rows}

    def _earlier_keys(self, admissions: Sequence[Admission]) -> dict[tuple[str, str], Purchase]:
        keys = {(a.event_id, a.idempotency_key) for a in admissions if a.idempotency_key}
        if not keys:
            return {}
        rows = self.conn.execute(
            f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE idempotency_key IS NOT NULL AND"
            " (event_id, idempotency_key) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))",
            (_json(sorted(keys)),),
        ).fetchall()
        earlier = [purchase_from_row(row) for row in rows]
        return {(p.event_id, p.idempotency_key or ""): p for p in earlier}

    def admit(self, a: Admission) -> Admitted:
        if a.idempotency_key is not None:
            earlier = self.by_key.get((a.event_id, a.idempotency_key))
            if earlier is not None:
                return a.replayed(earlier)
        reason = a.rejected_for or self._reason(a)
        purchase = a.purchase(reason, None if reason else self._take_position(a.event_id))
        self.purchases.append(purchase)
        if reason is None:
            self.queued.append(purchase)
        if a.idempotency_key is not None:
            self.by_key[(a.event_id, a.idempotency_key)] = purchase
        return Admitted(purchase)

    def _reason(self, a: Admission) -> Reason | None:
        if a.event_id not in self.sold_out:
            rows = self.conn.execute(
                "SELECT section FROM sold_out WHERE event_id = ?", (a.event_id,)
            ).fetchall()
            self.sold_out[a.event_id] = {r[0] for r in rows}
        if a.request.section in self.sold_out[a.event_id]:
            return Reason.SOLD_OUT
        buyer = (a.event_id, a.request.buyer_id)
        held = self.held.get(buyer, 0) + a.request.quantity
        if held > a.per_buyer_limit:
            return Reason.LIMIT_EXCEEDED
        self.held[buyer] = held
        return None

    def _take_position(self, event_id: str) -> int:
        if event_id not in self.next_position:
            row = self.conn.execute(
                "SELECT next_position FROM lines WHERE event_id = ?", (event_id,)
            ).fetchone()
            self.next_position[event_id] = row[0] if row else 1
        position = self.next_position[event_id]
        self.next_position[event_id] = position + 1
        return position

    def flush(self) -> None:
        """Write the group: the log, the line entries, the holdings, each event's counters."""
        self.conn.executemany(INSERT_PURCHASES, [purchase_to_row(p) for p in self.purchases])
        if not self.queued:
            return
        self.conn.execute(
            "INSERT INTO line (event_id, position, purchase_id)"
            " SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
            (_json([(p.event_id, p.position, p.id) for p in self.queued]),),
        )
        taken = {(p.event_id, p.buyer_id) for p in self.queued}
        self.conn.execute(
            "INSERT INTO holdings (event_id, buyer_id, held)"
            " SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true"
            " ON CONFLICT (event_id, buyer_id) DO UPDATE SET held = excluded.held",
            (_json([(*buyer, self.held[buyer]) for buyer in taken]),),
        )
        added: dict[str, int] = {}
        for p in self.queued:
            added[p.event_id] = added.get(p.event_id, 0) + 1
        self.conn.executemany(
            "INSERT INTO lines (event_id, next_position, undecided, ready) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET next_position = excluded.next_position,"
            " undecided = undecided + excluded.undecided, ready = ready + excluded.ready",
            [(e, self.next_position[e], n, n) for e, n in added.items()],
        )


def _json(rows: Sequence[tuple[Any, ...]]) -> str:
    return orjson.dumps(rows).decode()


WATCH_CHUNK = 500  # ids per IN (...) list: far below SQLite's 32,766 bound variables


def _undecided(purchase: Purchase) -> bool:
    return purchase.status in (PurchaseStatus.QUEUED, PurchaseStatus.FAILED)
