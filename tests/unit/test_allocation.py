"""The allocation rule, free of I/O: who gets tickets, which seats, and why not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventpro.domain.allocation import SectionStock, allocate, allocate_batch
from eventpro.domain.errors import InconsistentStock
from eventpro.domain.model import Purchase, PurchaseRequest, PurchaseStatus, Reason

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)


def reserved(*labels: str) -> SectionStock:
    return SectionStock(len(labels), {label: i for i, label in enumerate(labels)})


def ask(quantity: int = 1, seats: tuple[str, ...] = ()) -> PurchaseRequest:
    return PurchaseRequest("b", "A", len(seats) or quantity, seats, 100)


def test_general_admission_takes_while_enough_remains() -> None:
    stock = SectionStock(3)
    assert allocate(ask(2), stock) == ()
    assert allocate(ask(2), stock) is Reason.SOLD_OUT
    assert allocate(ask(1), stock) == ()  # a later, smaller request fits what is left
    assert stock.remaining == 0


def test_named_seats_are_all_or_nothing_and_come_in_seat_order() -> None:
    stock = reserved("A1", "A2", "A3")
    assert allocate(ask(seats=("A3", "A1")), stock) == ("A1", "A3")
    assert allocate(ask(seats=("A2", "A3")), stock) is Reason.SEAT_TAKEN
    assert stock.remaining == 1 and list(stock.free or {}) == ["A2"]


def test_any_seats_takes_the_lowest_free_ones() -> None:
    stock = reserved("A1", "A2", "A3", "A4")
    allocate(ask(seats=("A2",)), stock)
    assert allocate(ask(2), stock) == ("A1", "A3")
    assert allocate(ask(2), stock) is Reason.SOLD_OUT


def test_seats_that_disagree_with_the_count_stop_the_batch() -> None:
    stock = SectionStock(2, {"A1": 0})  # says 2 remain, knows 1 free seat
    with pytest.raises(InconsistentStock):
        allocate(ask(2), stock)


def test_a_batch_decides_in_order_and_names_the_sections_it_emptied() -> None:
    purchases = [
        Purchase(f"p{i}", "e", ask(q), PurchaseStatus.QUEUED, i, None, NOW)
        for i, q in enumerate([2, 2, 1], start=1)
    ]
    batch = allocate_batch(purchases, {("e", "A"): SectionStock(3)}, ["o1", "o2", "o3"], NOW)
    assert [(d.status, d.reason) for d in batch.decisions] == [
        (PurchaseStatus.CONFIRMED, None),
        (PurchaseStatus.REJECTED, Reason.SOLD_OUT),
        (PurchaseStatus.CONFIRMED, None),
    ]
    assert [d.order.id for d in batch.decisions if d.order] == ["o1", "o3"]
    assert batch.emptied_sections == {"A"}
