"""The admission service: fast rules, group commit and idempotency, on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from eventpro.adapters.sqlite import queue_from_url, store_from_url
from eventpro.domain.errors import (
    AdmissionPaused,
    EventNotFound,
    IdempotencyInFlight,
    IdempotencyMismatch,
    LineFull,
    QuantityOutOfRange,
    UnknownSection,
)
from eventpro.domain.model import Event, PurchaseStatus, Reason
from eventpro.ports import IdSource, InventoryStore, PurchaseQueue
from eventpro.services.admission import AdmissionService, PurchaseInput
from eventpro.services.events import set_paused
from tests.contract.helpers import NOW, FixedClock, new_event


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[tuple[InventoryStore, PurchaseQueue]]:
    url = f"sqlite:///{tmp_path / 'admission.db'}"
    store, queue = store_from_url(url), queue_from_url(url)
    yield store, queue
    queue.close()
    store.close()


def _event(store: InventoryStore, opens: datetime = NOW, capacity: int = 100) -> Event:
    return new_event(store, capacity=capacity, seats=(), opens=opens)


def _service(ports: tuple[InventoryStore, PurchaseQueue], max_line: int = 1000) -> AdmissionService:
    store, queue = ports
    return AdmissionService(store, queue, FixedClock(), IdSource(), max_line=max_line, cache_ttl=0)


def _buy(buyer: str, quantity: int = 1, section: str = "Floor") -> PurchaseInput:
    return PurchaseInput(buyer_id=buyer, section=section, seats=None, quantity=quantity)


def test_concurrent_requests_get_positions_in_arrival_order(ports) -> None:
    event = _event(ports[0])
    service = _service(ports)

    async def run() -> list[int | None]:
        answers = await asyncio.gather(
            *(service.submit(event.id, _buy(f"b{i}"), None) for i in range(300))
        )
        return [a.purchase.position for a in answers]

    try:
        assert asyncio.run(run()) == list(range(1, 301))
    finally:
        service.close()


def test_same_key_in_flight_is_refused_and_replay_returns_first_purchase(ports) -> None:
    event = _event(ports[0])
    service = _service(ports)

    async def run() -> None:
        first = asyncio.ensure_future(service.submit(event.id, _buy("u1"), "key-1"))
        await asyncio.sleep(0)  # the first is now in flight
        with pytest.raises(IdempotencyInFlight):
            await service.submit(event.id, _buy("u1"), "key-1")
        admitted = await first
        again = await service.submit(event.id, _buy("u1"), "key-1")
        assert again.purchase.id == admitted.purchase.id and again.replayed
        with pytest.raises(IdempotencyMismatch):
            await service.submit(event.id, _buy("u1", quantity=2), "key-1")

    try:
        asyncio.run(run())
    finally:
        service.close()


def test_concurrent_replays_of_a_finished_key_all_get_its_first_answer(ports) -> None:
    event = _event(ports[0])
    service = _service(ports)

    async def run() -> None:
        first = await service.submit(event.id, _buy("u1"), "key-1")
        replays = await asyncio.gather(
            *(service.submit(event.id, _buy("u1"), "key-1") for _ in range(10)),
            return_exceptions=True,
        )
        assert [getattr(r, "purchase", r) for r in replays] == [first.purchase] * 10

    try:
        asyncio.run(run())
    finally:
        service.close()


def test_rules_before_the_line(ports) -> None:
    store, _ = ports
    event = _event(store)
    later = _event(store, opens=NOW + timedelta(hours=1))
    service = _service(ports, max_line=2)

    async def run() -> None:
        with pytest.raises(EventNotFound):
            await service.submit("evt_missing", _buy("u1"), None)
        with pytest.raises(UnknownSection):
            await service.submit(event.id, _buy("u1", section="Balcony"), None)
        with pytest.raises(QuantityOutOfRange):
            await service.submit(event.id, _buy("u1", quantity=5), None)
        early = await service.submit(later.id, _buy("u1"), None)
        assert early.purchase.status is PurchaseStatus.REJECTED
        assert early.purchase.reason is Reason.SALE_NOT_OPEN and early.purchase.position is None
        await service.submit(event.id, _buy("u1"), None)
        await service.submit(event.id, _buy("u2"), None)
        with pytest.raises(LineFull):
            await service.submit(event.id, _buy("u3"), None)
        set_paused(store, event.id, True)
        with pytest.raises(AdmissionPaused):
            await service.submit(event.id, _buy("u4"), None)

    try:
        asyncio.run(run())
    finally:
        service.close()


def test_limit_counts_requests_already_in_line(ports) -> None:
    event = _event(ports[0])
    service = _service(ports)

    async def run() -> list[Reason | None]:
        answers = [await service.submit(event.id, _buy("u1", 2), None) for _ in range(3)]
        return [a.purchase.reason for a in answers]

    try:
        assert asyncio.run(run()) == [None, None, Reason.LIMIT_EXCEEDED]
    finally:
        service.close()
