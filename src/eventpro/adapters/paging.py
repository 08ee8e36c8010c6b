"""Opaque cursors and pages over rows keyed by a sequence number, for every SQL adapter.

A query asks for `limit + 1` rows, the first column of each its sequence number: the
extra row only says that another page follows, and the cursor points after the last row
kept, so items written while a client pages never shift a page already read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from eventpro.domain.model import Event
from eventpro.ports import InventoryStore, Page

T = TypeVar("T")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": seq})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor points after; ValueError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))["after"]
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"invalid cursor {cursor!r}")
    return value


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
