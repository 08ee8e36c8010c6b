"""Who gets tickets, and why not: the selling rules, written once.

The memory, SQLite and MySQL stores load the stock a batch needs, call `allocate_batch`
and only make its outcome atomic (a transaction, conditional writes as a second guard).
The PostgreSQL function and the Redis admission script are the only other copies, for
speed, and the contract suite holds them to the same answers.

Refusal reasons, in the order they win when several apply:

- at admission (`refusal_at_admission`): the sale is not open; the section is marked
  sold out; the buyer's tickets confirmed or in line would exceed the per-buyer limit.
  "Sold out" wins over "limit exceeded" because it is final for everyone: telling a buyer
  who may not buy more that they could otherwise have bought would be misleading.
- at the request's turn (`allocate`): named seats of which one is sold → `seat_taken`;
  fewer tickets (or free seats) left than asked → `sold_out`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from eventpro.domain.errors import InconsistentStock
from eventpro.domain.model import (
    DecidedBatch,
    Decision,
    Event,
    Order,
    Purchase,
    PurchaseRequest,
    PurchaseStatus,
    Reason,
)


def sale_is_open(event: Event, now: datetime) -> bool:
    return now >= event.sale_opens_at


def refusal_at_admission(
    event: Event, request: PurchaseRequest, *, now: datetime, held: int, sold_out: bool
) -> Reason | None:
    """Why a request is rejected at once, without entering the line; None if it may queue.

    `held` counts the buyer's tickets already confirmed or in line for this event.
    """
    if not sale_is_open(event, now):
        return Reason.SALE_NOT_OPEN
    return refusal_in_line(request.quantity, event.per_buyer_limit, held, sold_out)


def refusal_in_line(quantity: int, limit: int, held: int, sold_out: bool) -> Reason | None:
    """The queue's part of `refusal_at_admission`, once the sale is known to be open."""
    if sold_out:
        return Reason.SOLD_OUT
    if held + quantity > limit:
        return Reason.LIMIT_EXCEEDED
    return None


@dataclass
class SectionStock:
    """What a section holds now, as far as a batch needs to know.

    `free` is None for general admission; for a reserved section it maps free seat
    labels to their place in the section, in that order: at least the seats the batch
    names and the lowest free ones it could take.
    """

    remaining: int
    free: dict[str, int] | None = None


def allocate(request: PurchaseRequest, stock: SectionStock) -> tuple[str, ...] | Reason:
    """Take what `request` asks for out of `stock` and return the seats it got (none in
    general admission), or the reason it gets nothing."""
    if request.seats:
        free = stock.free or {}
        if any(label not in free for label in request.seats):
            return Reason.SEAT_TAKEN
        labels = tuple(sorted(request.seats, key=free.__getitem__))
    elif stock.remaining < request.quantity:
        return Reason.SOLD_OUT
    elif stock.free is not None:
        labels = tuple(itertools.islice(stock.free, request.quantity))
    else:
        labels = ()
    if stock.remaining < request.quantity or (
        stock.free is not None and len(labels) < request.quantity
    ):
        raise InconsistentStock(
            f"section {request.section}: {stock.remaining} left, but the free seats disagree"
        )
    stock.remaining -= request.quantity
    for label in labels:
        del stock.free[label]  # type: ignore[union-attr]  # labels come from `free`
    return labels


StockKey = tuple[str, str]  # (event id, section name)


def allocate_batch(
    purchases: Sequence[Purchase],
    stocks: Mapping[StockKey, SectionStock],
    order_ids: Iterable[str],
    now: datetime,
) -> DecidedBatch:
    """Decide `purchases` in their order against `stocks` (changed in place): an order or
    a reason for each, and the sections the batch left empty."""
    decisions = []
    for purchase, order_id in zip(purchases, order_ids, strict=False):
        request = purchase.request
        stock = stocks[(purchase.event_id, request.section)]
        got = allocate(request, stock)
        if isinstance(got, Reason):
            decisions.append(Decision(purchase.id, PurchaseStatus.REJECTED, got))
            continue
        order = make_order(order_id, purchase.event_id, purchase.id, request, got, now)
        decisions.append(Decision(purchase.id, PurchaseStatus.CONFIRMED, order=order))
    touched = {(p.event_id, p.request.section) for p in purchases}
    emptied = {
        section for event_id, section in touched if stocks[(event_id, section)].remaining == 0
    }
    return DecidedBatch(decisions, emptied)


def make_order(
    order_id: str,
    event_id: str,
    purchase_id: str,
    request: PurchaseRequest,
    seats: tuple[str, ...],
    created_at: datetime,
) -> Order:
    """The order a confirmed request produces; `seats` are the labels actually allocated."""
    return Order(
        id=order_id,
        event_id=event_id,
        buyer_id=request.buyer_id,
        purchase_id=purchase_id,
        section=request.section,
        seats=seats,
        quantity=request.quantity,
        amount_cents=request.amount_cents,
        created_at=created_at,
    )
