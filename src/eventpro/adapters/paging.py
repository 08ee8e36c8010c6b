"""Cursors and pages over rows keyed by a sequence number, for every adapter.

A cursor is the sequence number of the last item of a page, as digits: opaque to
clients, and any string of digits is a valid one (a page after that place).

A query asks for `limit + 1` rows, the first column of each its sequence number: the
extra row only says that another page follows, and the cursor points after the last row
kept, so items written while a client pages never shift a page already read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from eventpro.domain.model import Event
from eventpro.ports import InventoryStore, Page

T = TypeVar("T")


MAX_CURSOR_DIGITS = 18  # any such number fits a signed 64-bit column


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor points after; ValueError if it is not one of ours."""
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > MAX_CURSOR_DIGITS:
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(cursor)


def page_of(rows: Sequence[Sequence[Any]], limit: int, item: Callable[[Any], T | None]) -> Page[T]:
    """The page of up to `limit + 1` rows: `item(row)` of the first `limit` (None: left out)."""
    kept = rows[:limit]
    items = [found for row in kept if (found := item(row)) is not None]
    more = len(rows) > limit
    return Page(items, encode_cursor(kept[-1][0]) if more else None)


def page_of_events(store: InventoryStore, rows: Sequence[Sequence[Any]], limit: int) -> Page[Event]:
    """The page of `(seq, id)` rows of events, each event read whole from `store`."""

    def event(row: Sequence[Any]) -> Event | None:
        inventory = store.get_inventory(row[1])
        return inventory.event if inventory else None

    return page_of(rows, limit, event)


def page_after(items: list[tuple[int, T]], limit: int, cursor: str | None) -> Page[T]:
    """A page of in-memory `(sequence, item)` pairs after the cursor's sequence number."""
    after = decode_cursor(cursor) if cursor else 0
    chosen = [pair for pair in items if pair[0] > after][: limit + 1]
    kept = chosen[:limit]
    more = len(chosen) > limit
    return Page([item for _, item in kept], encode_cursor(kept[-1][0]) if more else None)
