"""Domain values to DynamoDB items and back: events, orders, decisions, purchases."""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

import orjson

from eventpro.adapters.dynamodb.client import Item, n, num, s, text
from eventpro.domain.model import (
    Decision,
    Event,
    Order,
    Purchase,
    PurchaseRequest,
    PurchaseStatus,
    Reason,
    Section,
)


def pack_event(event: Event) -> bytes:
    """The event's definition as compressed JSON (100,000 seat labels fit in one item)."""
    body = {
        "id": event.id,
        "name": event.name,
        "venue": event.venue,
        "starts_at": event.starts_at.isoformat(),
        "sale_opens_at": event.sale_opens_at.isoformat(),
        "per_buyer_limit": event.per_buyer_limit,
        "created_at": event.created_at.isoformat(),
        "sections": [[x.name, x.price_cents, x.capacity, list(x.seats)] for x in event.sections],
    }
    return zlib.compress(orjson.dumps(body), 6)


def unpack_event(blob: bytes, paused: bool) -> Event:
    body: dict[str, Any] = orjson.loads(zlib.decompress(blob))
    return Event(
        id=body["id"],
        name=body["name"],
        venue=body["venue"],
        starts_at=datetime.fromisoformat(body["starts_at"]),
        sale_opens_at=datetime.fromisoformat(body["sale_opens_at"]),
        per_buyer_limit=body["per_buyer_limit"],
        sections=tuple(Section(a, b, c, tuple(d)) for a, b, c, d in body["sections"]),
        created_at=datetime.fromisoformat(body["created_at"]),
        paused=paused,
    )


def order_id_for(purchase_id: str) -> str:
    """An order's id follows from its purchase's, so a decision needs no second lookup item."""
    return "ord_" + purchase_id.removeprefix("pur_")


def purchase_id_for(order_id: str) -> str:
    return "pur_" + order_id.removeprefix("ord_")


def decision_item(decision: Decision, event_id: str, position: int | None) -> Item:
    """A decision, keyed by its purchase; a confirmed one is also listed by event, position."""
    item: Item = {
        "pk": s(f"PUR#{decision.purchase_id}"),
        "sk": s("#DECISION"),
        "status": s(decision.status.value),
    }
    if decision.reason is not None:
        item["reason"] = s(decision.reason.value)
    order = decision.order
    if order is not None:
        item["order"] = {"B": orjson.dumps(_order_body(order))}
        item["opk"] = s(event_id)
        item["opos"] = n(position or 0)
    return item


def _order_body(order: Order) -> list[Any]:
    return [
        order.id, order.event_id, order.buyer_id, order.purchase_id, order.section,
        list(order.seats), order.quantity, order.amount_cents, order.created_at.isoformat(),
    ]  # fmt: skip


def order_from(item: Item) -> Order:
    a, b, c, d, e, seats, q, amount, at = orjson.loads(item["order"]["B"])
    return Order(a, b, c, d, e, tuple(seats), q, amount, datetime.fromisoformat(at))


def decision_from(item: Item) -> Decision:
    purchase_id = text(item, "pk").removeprefix("PUR#")
    reason = text(item, "reason")
    order = order_from(item) if "order" in item else None
    return Decision(purchase_id, PurchaseStatus(text(item, "status")), _reason(reason), order)


def _reason(value: str) -> Reason | None:
    return Reason(value) if value else None


def request_body(request: PurchaseRequest) -> bytes:
    r = request
    return orjson.dumps([r.buyer_id, r.section, r.quantity, list(r.seats), r.amount_cents])


def request_from(blob: bytes) -> PurchaseRequest:
    buyer, section, quantity, seats, amount = orjson.loads(blob)
    return PurchaseRequest(buyer, section, quantity, tuple(seats), amount)


def purchase_item(purchase: Purchase, seq: int) -> Item:
    """The admission log's record of a purchase, listed by event in arrival order (`log`)."""
    p = purchase
    item: Item = {
        "pk": s(f"PUR#{p.id}"),
        "sk": s("#"),
        "lpk": s(p.event_id),
        "lseq": n(seq),
        "request": {"B": request_body(p.request)},
        "status": s(p.status.value),
        "created_at": s(p.created_at.isoformat()),
    }
    optional = {
        "position": n(p.position) if p.position is not None else None,
        "reason": s(p.reason.value) if p.reason else None,
        "order_id": s(p.order_id) if p.order_id else None,
        "ikey": s(p.idempotency_key) if p.idempotency_key is not None else None,
        "ihash": s(p.request_hash) if p.request_hash is not None else None,
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def entry_item(purchase: Purchase) -> Item:
    """A request in the event's line, keyed by position, carrying what a worker needs."""
    assert purchase.position is not None
    item = purchase_item(purchase, 0)
    del item["lpk"], item["lseq"]
    item |= {
        "pk": s(f"L#{purchase.event_id}"),
        "sk": s(position_key(purchase.position)),
        "pid": s(purchase.id),
        "event": s(purchase.event_id),
    }
    return item


def position_key(position: int) -> str:
    return f"{position:012d}"


def purchase_from(item: Item) -> Purchase:
    """A purchase from its log record, or from its line entry or dead letter."""
    position = num(item, "position", -1)
    return Purchase(
        id=text(item, "pid") or text(item, "pk").removeprefix("PUR#"),
        event_id=text(item, "event") or text(item, "lpk"),
        request=request_from(item["request"]["B"]),
        status=PurchaseStatus(text(item, "status")),
        position=None if position < 0 else position,
        reason=_reason(text(item, "reason")),
        created_at=datetime.fromisoformat(text(item, "created_at")),
        order_id=text(item, "order_id") or None,
        idempotency_key=item["ikey"]["S"] if "ikey" in item else None,
        request_hash=item["ihash"]["S"] if "ihash" in item else None,
    )
