"""What the SQL stores share around the domain's `allocate_batch`: which rows a batch must
read, and what it took once decided. Each store runs the SQL in its own dialect, inside
one transaction, and writes what was taken with conditional writes as a second guard."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eventpro.domain.allocation import SectionStock, StockKey
from eventpro.domain.model import Decision, Purchase


@dataclass
class Wanted:
    """The seats a batch may take from one reserved section: those its requests name, and
    enough of the lowest free ones for its requests by count (named ones may be among
    them, so as many more as are named)."""

    named: set[str] = field(default_factory=set)
    lowest: int = 0


def wanted(purchases: Sequence[Purchase]) -> dict[StockKey, Wanted]:
    """The sections a batch touches, each with the seats it may take."""
    found: dict[StockKey, Wanted] = {}
    for p in purchases:
        want = found.setdefault((p.event_id, p.request.section), Wanted())
        if p.request.seats:
            want.named.update(p.request.seats)
        else:
            want.lowest += p.request.quantity
    for want in found.values():
        want.lowest += len(want.named)
    return found


def free_seats(rows: Iterable[Sequence[object]]) -> dict[str, int]:
    """`(label, index)` rows of free seats as `SectionStock.free`: ordered by index."""
    pairs = {str(label): int(index) for label, index in rows}  # type: ignore[call-overload]
    return dict(sorted(pairs.items(), key=lambda pair: pair[1]))


def taken(
    before: dict[StockKey, int], stocks: dict[StockKey, SectionStock]
) -> list[tuple[int, str, str]]:
    """`(count, event id, section)` of each section the batch took tickets from."""
    return [
        (before[key] - stock.remaining, *key)
        for key, stock in sorted(stocks.items())
        if before[key] != stock.remaining
    ]


def seats_sold(decisions: Sequence[Decision]) -> list[tuple[str, str, str]]:
    """`(order id, event id, label)` of every seat the decisions sold."""
    return [
        (d.order.id, d.order.event_id, label)
        for d in decisions
        if d.order is not None
        for label in d.order.seats
    ]


def new_purchases(purchases: Sequence[Purchase], known: Iterable[str]) -> list[Purchase]:
    """The purchases not decided before, each once, in their order."""
    decided = set(known)
    return list({p.id: p for p in purchases if p.id not in decided}.values())
