"""Polls read in groups: many buyers asking at one moment cost a few batch reads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from eventpro.domain.model import Purchase, PurchaseRequest, PurchaseStatus
from eventpro.ports import Unavailable
from eventpro.services.polls import PollReader
from eventpro.services.purchases import PurchaseView

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _view(purchase_id: str) -> PurchaseView:
    request = PurchaseRequest("b", "Floor", 1, (), 100)
    purchase = Purchase(purchase_id, "evt", request, PurchaseStatus.QUEUED, 1, None, NOW)
    return PurchaseView(purchase, 0, None)


def test_concurrent_polls_are_read_in_a_few_groups_off_the_event_loop() -> None:
    calls: list[tuple[int, int]] = []  # (ids in the call, thread)

    def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        calls.append((len(ids), threading.get_ident()))
        time.sleep(0.01)  # a read takes a moment: polls gather meanwhile
        return {i: _view(i) for i in ids if i != "pur_unknown"}

    async def run() -> list[PurchaseView | None]:
        reader = PollReader(read_many, readers=2)
        try:
            ids = [f"pur_{i % 150}" for i in range(300)] + ["pur_unknown"]
            return await asyncio.gather(*(reader.view(i) for i in ids))
        finally:
            reader.close()

    loop_thread = threading.get_ident()
    views = asyncio.run(run())
    assert [v.purchase.id if v else None for v in views[:3]] == ["pur_0", "pur_1", "pur_2"]
    assert views[-1] is None
    assert sum(n for n, _ in calls) <= 151 and len(calls) <= 4, calls  # ids read once a group
    assert loop_thread not in {thread for _, thread in calls}


def test_a_failed_read_fails_the_polls_of_its_group() -> None:
    def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        raise Unavailable("down")

    async def run() -> None:
        reader = PollReader(read_many)
        try:
            with pytest.raises(Unavailable):
                await reader.view("pur_1")
        finally:
            reader.close()

    asyncio.run(run())
