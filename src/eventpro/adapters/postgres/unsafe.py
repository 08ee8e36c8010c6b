"""DELIBERATELY BROKEN: the incident's read-then-write, on PostgreSQL (`postgresql+unsafe://`).

Each purchase reads what remains (or whether its seats are free) in one transaction,
pauses, and writes the computed value back in another, as the monolith did. It exists
only so that the race tests can prove, on a real database, that they catch an oversell.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from eventpro.adapters.postgres import drop_scope as postgres_drop_scope
from eventpro.adapters.postgres import scoped_url as postgres_scoped_url
from eventpro.adapters.postgres.database import PostgresDatabase
from eventpro.adapters.postgres.store import PostgresInventoryStore
from eventpro.domain.allocation import make_order
from eventpro.domain.model import DecidedBatch, Decision, Purchase, PurchaseStatus, Reason

PAUSE_SECONDS = 0.005


class UnsafePostgresInventoryStore(PostgresInventoryStore):
    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        return DecidedBatch([self._read_then_write(p, now) for p in purchases])

    def _read_then_write(self, purchase: Purchase, now: datetime) -> Decision:
        r = purchase.request
        with self.db.transaction() as conn:
            (seen,) = conn.execute(
                "SELECT remaining FROM sections WHERE event_id = %s AND name = %s",
                (purchase.event_id, r.section),
            ).fetchone() or (0,)
            taken = conn.execute(
                "SELECT count(*) FROM seats WHERE event_id = %s AND label = ANY(%s)"
                " AND order_id IS NOT NULL",
                (purchase.event_id, list(r.seats)),
            ).fetchone()
        time.sleep(PAUSE_SECONDS)  # the window in which other buyers read the same value
        if seen < r.quantity or (taken and taken[0]):
            return Decision(purchase.id, PurchaseStatus.REJECTED, Reason.SOLD_OUT)
        order = make_order(self._ids.new("ord"), purchase.event_id, purchase.id, r, r.seats, now)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE sections SET remaining = %s WHERE event_id = %s AND name = %s",
                (seen - r.quantity, purchase.event_id, r.section),
            )
            conn.execute(
                "UPDATE seats SET order_id = %s WHERE event_id = %s AND label = ANY(%s)",
                (order.id, purchase.event_id, list(r.seats)),
            )
            conn.execute(
                "INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,"
                " quantity, amount_cents, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    order.id,
                    order.event_id,
                    order.buyer_id,
                    order.purchase_id,
                    order.section,
                    list(order.seats),
                    order.quantity,
                    order.amount_cents,
                    now,
                ),
            )
        return Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order)


def store_from_url(url: str) -> UnsafePostgresInventoryStore:
    return UnsafePostgresInventoryStore(PostgresDatabase(url.replace("+unsafe", "", 1)))


def scoped_url(url: str, scope: str) -> str:
    return postgres_scoped_url(url, scope)


def drop_scope(url: str) -> None:
    postgres_drop_scope(url.replace("+unsafe", "", 1))
