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


@pytest.mark.parametrize("readers", [0, 1])
def test_a_failed_read_fails_the_polls_of_its_group(readers: int) -> None:
    def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        raise Unavailable("down")

    async def run() -> None:
        reader = PollReader(read_many, readers=readers)
        try:
            with pytest.raises(Unavailable):
                await reader.view("pur_1")
        finally:
            reader.close()

    asyncio.run(run())


def test_without_readers_polls_are_read_on_the_event_loop_in_groups() -> None:
    calls: list[tuple[int, int]] = []

    def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        calls.append((len(ids), threading.get_ident()))
        return {i: _view(i) for i in ids}

    async def run() -> list[PurchaseView | None]:
        reader = PollReader(read_many, readers=0)
        try:
            return await asyncio.gather(*(reader.view(f"pur_{i}") for i in range(300)))
        finally:
            reader.close()

    loop_thread = threading.get_ident()
    views = asyncio.run(run())
    assert [v.purchase.id for v in views if v] == [f"pur_{i}" for i in range(300)]
    assert [n for n, _ in calls] == [300]  # the polls of one turn of the loop: one read
    assert {thread for _, thread in calls} == {loop_thread}
