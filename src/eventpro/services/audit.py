"""The audit: the six invariants of the contract, checked from the stored data alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from eventpro.domain.model import Event, Order, Purchase, PurchaseStatus, Reason
from eventpro.ports import InventoryStore, Page, PurchaseQueue

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Check:
    number: int
    name: str
    ok: bool
    detail: str
    applies: bool = True  # False: the invariant has no meaning for this kind of sale


@dataclass(frozen=True, slots=True)
class AuditReport:
    event_id: str
    checks: list[Check]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def pages(load: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paged listing."""
    cursor: str | None = None
    while True:
        page = load(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@dataclass
class _Sale:
    event: Event
    remaining: dict[str, int]
    orders: list[Order]
    purchases: list[Purchase]
    dead: set[str]
    acknowledged: set[str] | None = None  # ids a client was answered 202 for, if known


def audit_event(
    store: InventoryStore,
    queue: PurchaseQueue,
    event_id: str,
    expect_settled: bool = True,
    synchronous: bool = False,
    acknowledged: set[str] | None = None,
) -> AuditReport | None:
    """Check every invariant of one event; None if the event does not exist.

    `acknowledged`: the purchase ids a client was answered `202` for. Without them the
    audit sees only what was stored; with them invariant 3 also checks that every one of
    them is stored, and final or dead-lettered (a `202` is a promise).
    `synchronous`: the event was sold by a synchronous strategy (`serve --strategy`),
    which keeps orders but no line: 3, 4 and 5 do not apply, nor does 6 (its idempotency
    is the unique purchase id each key maps to).
    """
    inventory = store.get_inventory(event_id)
    if inventory is None:
        return None
    if synchronous:
        return _audit_synchronous(store, inventory.event, inventory.remaining)
    sale = _Sale(
        event=inventory.event,
        remaining=inventory.remaining,
        orders=list(pages(lambda c: store.list_orders(event_id, 1000, c))),
        purchases=list(pages(lambda c: queue.list_purchases(event_id, None, 1000, c))),
        dead={d.purchase.id for d in pages(lambda c: queue.dead_letters(event_id, 1000, c))},
        acknowledged=acknowledged,
    )
    checks = [
        _capacity(sale),
        _per_buyer(sale),
        _nothing_lost(sale, expect_settled),
        _first_come_first_served(sale),
        _nothing_left_unsold(sale),
        _idempotency(sale),
    ]
    statuses = Counter(p.status.value for p in sale.purchases)
    reasons = Counter(f"rejected_{p.reason.value}" for p in sale.purchases if p.reason)
    counts = {
        "purchases": len(sale.purchases),
        "admitted": sum(1 for p in sale.purchases if p.position is not None),
        "orders": len(sale.orders),
        "tickets_sold": sum(o.quantity for o in sale.orders),
        "capacity": sale.event.capacity,
        **statuses,
        **reasons,
    }
    return AuditReport(event_id, checks, counts)


def _audit_synchronous(
    store: InventoryStore, event: Event, remaining: dict[str, int]
) -> AuditReport:
    orders = list(pages(lambda c: store.list_orders(event.id, 1000, c)))
    sale = _Sale(event=event, remaining=remaining, orders=orders, purchases=[], dead=set())
    no_line = "n/a: decided inside each request, no line"
    checks = [
        _capacity(sale),
        _per_buyer(sale),
        Check(3, "every 202 decided or dead-lettered, once", True, no_line, applies=False),
        Check(4, "decided in position order (FCFS)", True, no_line, applies=False),
        Check(5, "demand met while supply lasts", True, no_line, applies=False),
        Check(
            6,
            "one purchase per Idempotency-Key",
            True,
            "n/a: a key names one purchase id, unique among the orders",
            applies=False,
        ),
    ]
    counts = {
        "orders": len(orders),
        "tickets_sold": sum(o.quantity for o in orders),
        "capacity": event.capacity,
    }
    return AuditReport(event.id, checks, counts)


def _capacity(sale: _Sale) -> Check:
    problems = []
    for section in sale.event.sections:
        sold = sum(o.quantity for o in sale.orders if o.section == section.name)
        left = sale.remaining[section.name]
        if sold > section.capacity or sold + left != section.capacity:
            problems.append(
                f"{section.name}: capacity {section.capacity}, sold {sold}, remaining {left}"
            )
    seats = Counter(label for o in sale.orders for label in o.seats)
    twice = sorted(label for label, n in seats.items() if n > 1)
    if twice:
        problems.append(f"seats in two orders: {', '.join(twice[:10])}")
    sold = sum(o.quantity for o in sale.orders)
    detail = "; ".join(problems) or f"{sold} of {sale.event.capacity} sold, no seat twice"
    return Check(1, "never oversold, no seat twice", not problems, detail)


def _per_buyer(sale: _Sale) -> Check:
    held: defaultdict[str, int] = defaultdict(int)
    for order in sale.orders:
        held[order.buyer_id] += order.quantity
    over = {b: n for b, n in held.items() if n > sale.event.per_buyer_limit}
    detail = (
        f"{len(over)} buyers over {sale.event.per_buyer_limit}: {dict(list(over.items())[:5])}"
        if over
        else f"max {max(held.values(), default=0)} per buyer (limit {sale.event.per_buyer_limit})"
    )
    return Check(2, "per-buyer limit", not over, detail)


def _nothing_lost(sale: _Sale, expect_settled: bool) -> Check:
    admitted = [p for p in sale.purchases if p.position is not None]
    queued = [p for p in admitted if p.status is PurchaseStatus.QUEUED]
    failed = [p for p in admitted if p.status is PurchaseStatus.FAILED]
    stray_failed = [p.id for p in failed if p.id not in sale.dead]
    confirmed = {p.id: p for p in sale.purchases if p.status is PurchaseStatus.CONFIRMED}
    order_of = Counter(o.purchase_id for o in sale.orders)
    orphans = [pid for pid in order_of if pid not in confirmed or order_of[pid] > 1]
    missing = [pid for pid, p in confirmed.items() if order_of[pid] != 1 or not p.order_id]
    problems = _unacknowledged(sale, expect_settled)
    if queued and expect_settled:
        problems.append(f"{len(queued)} still queued")
    if stray_failed:
        problems.append(f"{len(stray_failed)} failed but not in the dead-letter queue")
    if orphans or missing:
        problems.append(
            f"{len(orphans)} orders without one confirmed purchase,"
            f" {len(missing)} confirmed purchases without one order"
        )
    detail = "; ".join(problems) or (
        f"{len(admitted)} admitted: {len(admitted) - len(queued) - len(failed)} final,"
        f" {len(failed)} in the dead-letter queue, {len(queued)} queued"
        + (f"; all {len(sale.acknowledged)} acknowledged stored" if sale.acknowledged else "")
    )
    return Check(3, "every 202 decided or dead-lettered, once", not problems, detail)


def _unacknowledged(sale: _Sale, expect_settled: bool) -> list[str]:
    """What broke the promise of a 202: an acknowledged purchase not stored, or not final."""
    if sale.acknowledged is None:
        return []
    stored = {p.id: p for p in sale.purchases}
    lost = [pid for pid in sale.acknowledged if pid not in stored]
    undecided = [
        pid
        for pid in sale.acknowledged
        if pid in stored and not stored[pid].status.is_final and pid not in sale.dead
    ]
    problems = []
    if lost:
        problems.append(f"{len(lost)} answered 202 but never stored, e.g. {sorted(lost)[:3]}")
    if undecided and expect_settled:
        problems.append(f"{len(undecided)} answered 202 but neither final nor dead-lettered")
    return problems


def _first_come_first_served(sale: _Sale) -> Check:
    """Refused for want of stock while a later request for as many or more got tickets.

    Nothing is ever released, so what remained when the later one was decided also
    remained at the earlier one's turn: that is unfair. A later, *smaller* request may
    fairly get the last tickets that a larger one could not use.
    """
    violations = 0
    by_section: defaultdict[str, list[Purchase]] = defaultdict(list)
    for p in sale.purchases:
        if p.position is not None and not p.request.seats:
            by_section[p.request.section].append(p)
    for line in by_section.values():
        line.sort(key=lambda p: p.position or 0)
        largest_later_win = 0
        for p in reversed(line):
            if p.status is PurchaseStatus.CONFIRMED:
                largest_later_win = max(largest_later_win, p.request.quantity)
            elif p.reason is Reason.SOLD_OUT:
                violations += largest_later_win >= p.request.quantity
    detail = f"{violations} requests refused while a later one got the tickets"
    return Check(4, "decided in position order (FCFS)", violations == 0, detail)


def _nothing_left_unsold(sale: _Sale) -> Check:
    """A request refused as sold out while at least its quantity remained: broken.

    Dead letters are requests not decided; the tickets they asked for may fairly remain,
    but only those: each section is judged on what remains beyond them.
    """
    problems = []
    for section in sale.event.sections:
        refused = [
            p.request.quantity
            for p in sale.purchases
            if p.request.section == section.name and p.reason is Reason.SOLD_OUT
        ]
        held_back = sum(
            p.request.quantity
            for p in sale.purchases
            if p.request.section == section.name and p.id in sale.dead
        )
        left = sale.remaining[section.name] - held_back
        if refused and left >= min(refused):
            problems.append(
                f"{section.name}: {left} left beyond {held_back} asked by dead letters,"
                f" yet {len(refused)} refused as sold out"
            )
    detail = "; ".join(problems) or "no ticket left while a request for it was refused"
    return Check(5, "demand met while supply lasts", not problems, detail)


def _idempotency(sale: _Sale) -> Check:
    keys = Counter(p.idempotency_key for p in sale.purchases if p.idempotency_key)
    reused = {k: n for k, n in keys.items() if n > 1}
    detail = f"{len(reused)} keys with two purchases" if reused else f"{len(keys)} keys, one each"
    return Check(6, "one purchase per Idempotency-Key", not reused, detail)
