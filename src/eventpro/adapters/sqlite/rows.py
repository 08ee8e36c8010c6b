"""Row ↔ domain value conversions shared by the SQLite adapters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from eventpro.domain.model import (
    Event,
    Order,
    Purchase,
    PurchaseRequest,
    PurchaseStatus,
    Reason,
    Section,
)

Row = Sequence[Any]


def event_from_row(row: Row, sections: Sequence[Row], seats: Sequence[Row]) -> Event:
    """An event from its `events` row, its sections and its (section, label) seat rows."""
    labels: dict[str, list[str]] = {}
    for section, label in seats:
        labels.setdefault(section, []).append(label)
    _, id_, name, venue, starts_at, sale_opens_at, limit, created_at, paused = row
    return Event(
        id=id_,
        name=name,
        venue=venue,
        starts_at=datetime.fromisoformat(starts_at),
        sale_opens_at=datetime.fromisoformat(sale_opens_at),
        per_buyer_limit=limit,
        sections=tuple(
            Section(name=s[0], price_cents=s[1], capacity=s[2], seats=tuple(labels.get(s[0], ())))
            for s in sections
        ),
        created_at=datetime.fromisoformat(created_at),
        paused=bool(paused),
    )


def order_from_row(row: Row) -> Order:
    """An order from a `SELECT * FROM orders` row."""
    _, id_, event_id, buyer_id, purchase_id, section, seats, quantity, amount, created_at = row
    return Order(
        id=id_,
        event_id=event_id,
        buyer_id=buyer_id,
        purchase_id=purchase_id,
        section=section,
        seats=tuple(orjson.loads(seats)),
        quantity=quantity,
        amount_cents=amount,
        created_at=datetime.fromisoformat(created_at),
    )


PURCHASE_COLUMNS = (
    "seq, id, event_id, buyer_id, section, seats, quantity, amount_cents, position, status,"
    " reason, order_id, idempotency_key, request_hash, created_at"
)


# Enum members by value: a dict lookup costs a tenth of `PurchaseStatus(value)`, and
# leases read hundreds of rows a batch.
STATUSES = {status.value: status for status in PurchaseStatus}
REASONS = {reason.value: reason for reason in Reason}


def purchase_from_row(row: Row) -> Purchase:
    """A purchase from a row of `PURCHASE_COLUMNS`."""
    (_, id_, event_id, buyer_id, section, seats, quantity, amount, position, status, reason,
     order_id, key, request_hash, created_at) = row  # fmt: skip
    return Purchase(
        id=id_,
        event_id=event_id,
        request=PurchaseRequest(
            buyer_id=buyer_id,
            section=section,
            quantity=quantity,
            seats=tuple(orjson.loads(seats)) if seats != "[]" else (),
            amount_cents=amount,
        ),
        status=STATUSES[status],
        position=position,
        reason=REASONS[reason] if reason else None,
        created_at=datetime.fromisoformat(created_at),
        order_id=order_id,
        idempotency_key=key,
        request_hash=request_hash,
    )


def purchase_to_row(p: Purchase) -> tuple[Any, ...]:
    """The values of `PURCHASE_COLUMNS` but `seq`, for an INSERT."""
    r = p.request
    return (
        p.id,
        p.event_id,
        r.buyer_id,
        r.section,
        orjson.dumps(r.seats).decode(),
        r.quantity,
        r.amount_cents,
        p.position,
        p.status.value,
        p.reason.value if p.reason else None,
        p.order_id,
        p.idempotency_key,
        p.request_hash,
        p.created_at.isoformat(),
    )
