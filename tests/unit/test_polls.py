"""Polls read in groups: many buyers asking at one moment cost a few batch reads, made
where they cost the server least."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from eventpro.adapters.memory.queue import MemoryQueue
from eventpro.adapters.memory.store import MemoryInventoryStore
from eventpro.api import hot
from eventpro.api.errors import ApiError
from eventpro.domain.model import Purchase, PurchaseRequest, PurchaseStatus
from eventpro.ports import Unavailable
from eventpro.services.polls import GroupReads, PollReader
from eventpro.services.purchases import PurchaseView
from tests.contract.helpers import admission, drain, new_event

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _view(purchase_id: str) -> PurchaseView:
    request = PurchaseRequest("b", "Floor", 1, (), 100)
    purchase = Purchase(purchase_id, "evt", request, PurchaseStatus.QUEUED, 1, None, NOW)
    return PurchaseView(purchase, 0, None)


def test_concurrent_polls_are_read_in_a_few_groups() -> None:
    calls: list[int] = []  # ids in each call

    async def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        calls.append(len(ids))
        await asyncio.sleep(0.01)  # a read takes a moment: polls gather meanwhile
        return {i: _view(i) for i in ids if i != "pur_unknown"}

    async def run() -> list[PurchaseView | None]:
        reader = PollReader(read_many, in_flight=2)
        ids = [f"pur_{i % 150}" for i in range(300)] + ["pur_unknown"]
        return await asyncio.gather(*(reader.view(i) for i in ids))

    views = asyncio.run(run())
    assert [v.purchase.id if v else None for v in views[:3]] == ["pur_0", "pur_1", "pur_2"]
    assert views[-1] is None
    assert sum(calls) <= 151 and len(calls) <= 4, calls  # each id read once a group


def test_a_failed_read_fails_the_polls_of_its_group() -> None:
    async def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        raise Unavailable("down")

    async def run() -> None:
        with pytest.raises(Unavailable):
            await PollReader(read_many).view("pur_1")

    asyncio.run(run())


class _Recording(MemoryQueue):
    """The reference queue, noting the thread of each read and which call made it."""

    def __init__(self, capabilities: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.capabilities = capabilities
        self.reads: list[tuple[str, int]] = []

    def watch(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        self.reads.append(("watch", threading.get_ident()))
        return super().watch(purchase_ids)

    async def watch_async(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        self.reads.append(("watch_async", threading.get_ident()))
        return super().watch(purchase_ids)


def _sale(queue: MemoryQueue) -> tuple[MemoryInventoryStore, list[str]]:
    """Three buyers of a two-ticket section, all decided: two confirmed, one rejected."""
    store = MemoryInventoryStore()
    event = new_event(store, capacity=2, seats=())
    admitted = queue.admit([admission(event, f"b{i}") for i in range(3)])
    drain(store, queue)
    return store, [a.purchase.id for a in admitted]


@pytest.mark.parametrize(
    ("local", "capabilities", "call", "on_loop"),
    [
        (True, frozenset(), "watch", True),  # SQLite: on the loop, it never waits
        (False, frozenset({"async_watch"}), "watch_async", True),  # Redis: its async client
        (False, frozenset(), "watch", False),  # any other: in the reader thread
    ],
)
def test_a_group_is_read_where_the_backends_allow(
    local: bool, capabilities: frozenset[str], call: str, on_loop: bool
) -> None:
    queue = _Recording(capabilities | ({"local"} if local else set()))
    store, ids = _sale(queue)
    store.capabilities = frozenset({"local"}) if local else frozenset()

    async def run() -> list[PurchaseView | None]:
        reads = GroupReads(store, queue)
        try:
            reader = PollReader(reads)
            return await asyncio.gather(*(reader.view(i) for i in [*ids, "pur_unknown"]))
        finally:
            await reads.close()

    loop_thread = threading.get_ident()
    queue.reads.clear()
    views = asyncio.run(run())
    assert [(name, thread == loop_thread) for name, thread in queue.reads] == [(call, on_loop)]
    statuses = [v.purchase.status if v else None for v in views]
    assert statuses.count(PurchaseStatus.CONFIRMED) == 2 and views[-1] is None
    confirmed = [v for v in views if v and v.purchase.status is PurchaseStatus.CONFIRMED]
    assert all(v.order is not None and v.order.id == v.purchase.order_id for v in confirmed)


def test_the_hot_poll_answers_each_poll_of_a_group_from_its_read() -> None:
    """`api/hot.py`'s poll takes no future of the view: the group's read sets each answer
    itself, a known purchase 200 with `Retry-After`, an unknown one the contract's 404,
    and a failed read fails every poll of its group."""
    failing = False

    async def read_many(ids: Sequence[str]) -> dict[str, PurchaseView]:
        await asyncio.sleep(0)
        if failing:
            raise Unavailable("down")
        return {i: _view(i) for i in ids if i != "pur_unknown"}

    class State:
        polls = PollReader(read_many)

    def poll(purchase_id: str) -> asyncio.Future[hot.Answer]:
        return hot._poll(hot.RawRequest({"purchase_id": purchase_id}, "", None, b"", State))

    async def run() -> tuple[list[object], list[object]]:
        nonlocal failing
        async with asyncio.timeout(5):  # a poll left unanswered fails, not hangs
            read = await asyncio.gather(poll("pur_1"), poll("pur_unknown"), return_exceptions=True)
            failing = True
            failed = await asyncio.gather(poll("pur_1"), poll("pur_2"), return_exceptions=True)
        return read, failed

    (known, unknown), failed = asyncio.run(run())
    assert isinstance(known, hot.Answer) and known.status == 200
    assert dict(known.headers) == {b"retry-after": b"1"}
    assert isinstance(unknown, ApiError) and unknown.status == 404
    assert all(isinstance(f, Unavailable) for f in failed), failed
