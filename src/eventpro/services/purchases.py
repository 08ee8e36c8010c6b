"""Reading purchases: a buyer's view of one request, and the admin listings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventpro.domain.model import Order, Purchase, PurchaseStatus, Value
from eventpro.ports import InventoryStore, PurchaseQueue


class PurchaseView(Value, frozen=True):
    purchase: Purchase
    ahead: int
    order: Order | None


def view_purchase(
    store: InventoryStore, queue: PurchaseQueue, purchase_id: str
) -> PurchaseView | None:
    """The purchase with how many undecided requests are before it and its order, or None."""
    purchase = queue.get_purchase(purchase_id)
    if purchase is None:
        return None
    undecided = purchase.status in (PurchaseStatus.QUEUED, PurchaseStatus.FAILED)
    ahead = queue.ahead(purchase) if undecided else 0
    order = store.get_order(purchase.order_id) if purchase.order_id else None
    return PurchaseView(purchase, ahead, order)


def view_purchases(
    store: InventoryStore, queue: PurchaseQueue, purchase_ids: Sequence[str]
) -> dict[str, PurchaseView]:
    """Several purchases at once (a group of polls, the live streams' tick): one batch read
    of the line, and one of the orders of the confirmed ones. Unknown ids are left out."""
    watched = queue.watch(purchase_ids)
    order_ids = order_ids_of(watched)
    return views_of(watched, store.get_orders(order_ids) if order_ids else {})


def order_ids_of(watched: Mapping[str, tuple[Purchase, int]]) -> list[str]:
    """The orders of the decided purchases among `watched` (`PurchaseQueue.watch`)."""
    return [p.order_id for p, _ in watched.values() if p.order_id]


def views_of(
    watched: Mapping[str, tuple[Purchase, int]], orders: Mapping[str, Order]
) -> dict[str, PurchaseView]:
    """The views of `watched` purchases, each with its order among `orders`."""
    return {
        purchase_id: PurchaseView(purchase, ahead, orders.get(purchase.order_id or ""))
        for purchase_id, (purchase, ahead) in watched.items()
    }


def count_purchases(queue: PurchaseQueue, event_id: str, page: int = 1000) -> dict[str, int]:
    """How many of the event's purchases are in each status (the dashboard's counts).

    It pages through the admission log, so it costs one read per `page` purchases: fine
    for an operator's view refreshed once a second, not for buyers.
    """
    counts = dict.fromkeys((s.value for s in PurchaseStatus), 0)
    cursor: str | None = None
    while True:
        listed = queue.list_purchases(event_id, None, page, cursor)
        for purchase in listed.items:
            counts[purchase.status.value] += 1
        cursor = listed.next_cursor
        if cursor is None:
            return counts
