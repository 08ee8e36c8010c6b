"""The reads whose SQL the PostgreSQL and MySQL stores share (`%s` parameters).

A store supplies `_rows` (the rows of one statement, run in a transaction of its own, on
its driver) and `_order_of` (an `Order` from a row of `ORDER_COLUMNS`: the two differ in
how they store seats and times); the SQL of seat maps and orders is written once.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from eventpro.adapters.paging import decode_cursor, page_of
from eventpro.domain.model import Order
from eventpro.ports import InventoryStore, Page

ORDER_COLUMNS = (
    "seq, id, event_id, buyer_id, purchase_id, section, seats, quantity, amount_cents, created_at"
)
Rows = Sequence[Sequence[Any]]
ORDERS_AT_ONCE = 500  # ids per statement of `get_orders`


class SqlReads(InventoryStore):
    @abc.abstractmethod
    def _rows(self, sql: str, params: Sequence[object]) -> Rows:
        """The rows `sql` answers, in a transaction of its own."""

    @staticmethod
    @abc.abstractmethod
    def _order_of(row: Sequence[Any]) -> Order:
        """The order of a row of `ORDER_COLUMNS`."""

    def seat_map(self, event_id: str, section: str) -> list[tuple[str, bool]]:
        rows = self._rows(
            "SELECT label, order_id IS NULL FROM seats WHERE event_id = %s AND section = %s"
            " ORDER BY idx",
            (event_id, section),
        )
        return [(label, bool(free)) for label, free in rows]

    def get_order(self, order_id: str) -> Order | None:
        rows = self._rows(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s", (order_id,))
        return self._order_of(rows[0]) if rows else None

    def get_orders(self, order_ids: Sequence[str]) -> dict[str, Order]:
        found: dict[str, Order] = {}
        unique = list(dict.fromkeys(order_ids))
        for start in range(0, len(unique), ORDERS_AT_ONCE):
            chunk = unique[start : start + ORDERS_AT_ONCE]
            marks = ", ".join(["%s"] * len(chunk))  # one placeholder per id, never the id
            rows = self._rows(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id IN ({marks})", chunk)
            found.update((order.id, order) for order in map(self._order_of, rows))
        return found

    def list_orders(self, event_id: str, limit: int, cursor: str | None) -> Page[Order]:
        after = decode_cursor(cursor) if cursor else 0
        rows = self._rows(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE event_id = %s AND seq > %s"
            " ORDER BY seq LIMIT %s",
            (event_id, after, limit + 1),
        )
        return page_of(rows, limit, self._order_of)
