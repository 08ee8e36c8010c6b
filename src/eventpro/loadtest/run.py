"""Play a scenario against any EventPro deployment: buyers arrive, buy, retry, wait.

Every buyer's request is one coroutine: it waits for its arrival time, POSTs with its
Idempotency-Key, follows the retry policy on errors, and after a `202` learns its
decision by polling or by the live stream. Every attempt and every outcome is recorded,
so the results file holds per-request timings and a per-second time series, and the
summary can be checked against what the server stored.

The generator must not be the bottleneck it measures: it reports its own CPU use and the
rate it actually offered, and spreads buyers over several processes when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import random
import resource
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from eventpro.loadtest.http import TIMEOUT, HttpClient, Reply, run
from eventpro.loadtest.results import FINAL, Attempt, Counters, LoadResult, RequestRecord
from eventpro.loadtest.scenario import Scenario

RETRIED_STATUSES = frozenset({429, 503})  # the server asks to come back (Retry-After)


# --------------------------------------------------------------------------- buyers


@dataclass(frozen=True)
class _Plan:
    """What one client process plays: its share of the requests, on a shared clock."""

    base_url: str
    event_id: str
    scenario: Scenario
    requests: list[tuple[int, int, float, bool]]  # (buyer, request, arrival offset, duplicate)
    start_at: float  # time.time() of the run's start, shared by every process
    run_id: str


def _requests(scenario: Scenario) -> list[tuple[int, int, float, bool]]:
    rng = random.Random(scenario.seed)
    planned = []
    for buyer, arrives in enumerate(scenario.arrivals()):
        for request in range(scenario.requests_per_buyer):
            planned.append((buyer, request, arrives, False))
            if rng.random() < scenario.duplicate_share:
                planned.append((buyer, request, arrives, True))
    return planned


def _body(scenario: Scenario, buyer: int, request: int) -> bytes:
    """The request's JSON body: the same for a duplicate as for its original."""
    mix = scenario.mix
    section = mix.section
    if mix.seats_share:  # a hash, not a seeded Random per request: that cost 25 µs each
        draw = zlib.crc32(f"{scenario.seed}:{buyer}:{request}".encode()) / 2**32
        section = mix.seat_section if draw < mix.seats_share else mix.section
    return orjson.dumps({"buyer_id": f"b{buyer}", "section": section, "quantity": mix.quantity})


async def _play(
    plan: _Plan, counters: Counters
) -> tuple[list[RequestRecord], list[tuple[float, float]]]:
    scenario = plan.scenario
    loop_start = time.perf_counter() + (plan.start_at - time.time())
    records: list[RequestRecord] = []
    remaining: list[tuple[float, float]] = []

    def now() -> float:
        return time.perf_counter() - loop_start

    async with HttpClient(plan.base_url, scenario.connections, scenario.timeout_s) as client:
        buyer = _Buyer(client, plan, now, counters)
        done = asyncio.Event()
        watcher = asyncio.create_task(_watch_remaining(client, plan, now, remaining, done))
        tasks = []
        for index, (who, request, arrives, duplicate) in enumerate(plan.requests):
            delay = arrives - now()
            if delay > 0:
                await asyncio.sleep(delay)
            record = RequestRecord(who, request, duplicate)
            records.append(record)
            tasks.append(asyncio.create_task(buyer.buy(record)))
            if index % 2000 == 1999:  # keep finished tasks from piling up
                tasks = [t for t in tasks if not t.done()]
        await asyncio.gather(*tasks)
        done.set()  # not cancel(): a request cancelled in flight may never return
        await watcher
    return records, remaining


async def _watch_remaining(
    client: HttpClient,
    plan: _Plan,
    now: Callable[[], float],
    remaining: list[tuple[float, float]],
    done: asyncio.Event,
) -> None:
    """Tickets left, once a second, from the public event endpoint (NaN when it fails),
    until `done` is set."""
    while not done.is_set():
        at = now()
        reply = await client.get(f"/v1/events/{plan.event_id}")
        try:
            event = orjson.loads(reply.body) if reply.status == 200 else None
            left = float(sum(s["remaining"] for s in event["sections"])) if event else math.nan
        except (ValueError, KeyError, TypeError):
            left = math.nan
        remaining.append((at, left))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), max(0.0, 1.0 - (now() - at)))


class _Buyer:
    def __init__(
        self,
        client: HttpClient,
        plan: _Plan,
        now: Callable[[], float],
        counters: Counters,
    ) -> None:
        self.client, self.plan, self.now, self.counters = client, plan, now, counters
        self.scenario = plan.scenario
        self.path = f"/v1/events/{plan.event_id}/purchases"

    async def buy(self, record: RequestRecord) -> None:
        scenario = self.scenario
        body = _body(scenario, record.buyer, record.request)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"{self.plan.run_id}-{record.buyer}-{record.request}",
        }
        for attempt in range(scenario.retry.max_attempts):
            reply, answer = await self._post(body, headers, record)
            if _in_flight(reply.status, answer):  # our own duplicate is being admitted: again
                await asyncio.sleep(random.uniform(0.05, 0.2))
                continue
            status = reply.status
            if status in (201, 202, 409) or (400 <= status < 500 and status != 429):
                await self._settle(record, status, answer)
                return
            last_attempt = attempt == scenario.retry.max_attempts - 1
            if scenario.retry.policy == "none" or last_attempt:
                break
            if scenario.retry.policy == "backoff":
                ceiling = min(scenario.retry.max_delay_s, scenario.retry.base_delay_s * 2**attempt)
                await asyncio.sleep(max(reply.retry_after, random.uniform(0, ceiling)))
        record.outcome = "timeout" if record.attempts[-1].status == TIMEOUT else "error"
        record.decided_s = self.now()
        self.counters.decided += 1

    async def _post(
        self, body: bytes, headers: dict[str, str], record: RequestRecord
    ) -> tuple[Reply, Any]:
        sent = self.now()
        self.counters.sent += 1
        reply = await self.client.post(self.path, body, headers)
        record.attempts.append(Attempt(sent, self.now() - sent, reply.status))
        if reply.status > 0:
            self.counters.answered += 1
        return reply, _json(reply.body)

    async def _settle(self, record: RequestRecord, status: int, answer: Any) -> None:
        """Record the final outcome, waiting for it after a `202` still queued."""
        if status == 202 and isinstance(answer, dict):
            record.purchase_id = answer.get("purchase_id")
            # queued: wait for the decision; confirmed (a replayed key): fetch its order
            if answer.get("status") != "rejected" and self.scenario.wait != "none":
                answer = await self._wait(record.purchase_id)
            self._final(record, answer)
        elif status == 201 and isinstance(answer, dict):
            record.purchase_id = answer.get("purchase_id")
            self._final(record, answer)
        elif status == 409 and isinstance(answer, dict):
            code = answer.get("error", {}).get("code", "conflict")
            record.outcome = f"rejected:{code}"
        else:
            record.outcome = f"refused:{status}"
        record.decided_s = self.now()
        self.counters.decided += 1

    def _final(self, record: RequestRecord, purchase: Any) -> None:
        state = purchase.get("status") if isinstance(purchase, dict) else None
        if state == "confirmed":
            record.outcome = "confirmed"
            record.tickets = int((purchase.get("order") or {}).get("quantity", 0))
        elif state == "rejected":
            record.outcome = f"rejected:{purchase.get('reason')}"
        else:
            record.outcome = "queued"

    async def _wait(self, purchase_id: str | None) -> Any:
        """The purchase once final, by polling or by its live stream; the last seen if not."""
        if purchase_id is None:
            return None
        path = f"/v1/purchases/{purchase_id}"
        deadline = self.now() + WAIT_LIMIT_S
        last: Any = None
        while self.now() < deadline:
            pace = 0.0
            if self.scenario.wait == "stream":
                last = await self._stream(path + "/stream") or last
            else:
                reply = await self.client.get(path)
                last, pace = _json(reply.body) or last, reply.retry_after
            if isinstance(last, dict) and last.get("status") in FINAL:
                return last
            # the server's pace when it gives one, with jitter so polls do not synchronise
            interval = max(self.scenario.poll_interval_s, pace)
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        return last

    async def _stream(self, path: str) -> Any:
        """Read Server-Sent Events until a final status (or the stream ends)."""
        last: Any = None
        async for line in self.client.lines(path, WAIT_LIMIT_S):
            if line.startswith(b"data:"):
                last = _json(line[5:].strip()) or last
                if isinstance(last, dict) and last.get("status") in FINAL:
                    return last
        return last


WAIT_LIMIT_S = 300.0  # a buyer waits at most this long for a decision after a 202


def _in_flight(status: int, answer: Any) -> bool:
    if status != 409 or not isinstance(answer, dict):
        return False
    return bool(answer.get("error", {}).get("code") == "idempotency_key_in_flight")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


# --------------------------------------------------------------------------- processes


def _play_in_process(plan: _Plan) -> tuple[list[RequestRecord], list[tuple[float, float]], float]:
    """A client process's whole life: play its share, return records and its CPU time."""
    started = resource.getrusage(resource.RUSAGE_SELF)
    records, remaining = run(_play(plan, Counters()))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (used.ru_utime - started.ru_utime) + (used.ru_stime - started.ru_stime)
    return records, remaining, cpu


def run_load(
    base_url: str,
    event_id: str,
    scenario: Scenario,
    progress: Callable[[Counters, int], None] | None = None,
) -> LoadResult:
    """Play `scenario` against the deployment at `base_url` for `event_id`.

    With `scenario.processes > 1` the requests are dealt round-robin to that many client
    processes that share one start time. `progress(counters, total)` is called about ten
    times a second from this process while the load runs (single process only).
    """
    requests = _requests(scenario)
    run_id = uuid.uuid4().hex[:8]
    start_at = time.time() + 0.5 * scenario.processes  # room for the processes to start
    plans = [
        _Plan(base_url, event_id, scenario, requests[k :: scenario.processes], start_at, run_id)
        for k in range(scenario.processes)
    ]
    wall_started = time.perf_counter()
    if scenario.processes == 1:
        records, remaining, cpu = _run_here(plans[0], progress, len(requests))
        cpus = [cpu]
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(scenario.processes) as pool:
            parts = pool.map(_play_in_process, plans)
        records = [r for part in parts for r in part[0]]
        remaining = parts[0][1]
        cpus = [part[2] for part in parts]
    wall = time.perf_counter() - wall_started
    records.sort(key=lambda r: (r.first_sent_s, r.buyer, r.request))
    return LoadResult(scenario, records, remaining, wall, cpus)


def _run_here(
    plan: _Plan, progress: Callable[[Counters, int], None] | None, total: int
) -> tuple[list[RequestRecord], list[tuple[float, float]], float]:
    counters = Counters()
    started = resource.getrusage(resource.RUSAGE_SELF)

    async def main() -> tuple[list[RequestRecord], list[tuple[float, float]]]:
        play = asyncio.create_task(_play(plan, counters))
        while progress is not None and not play.done():
            progress(counters, total)
            await asyncio.sleep(0.1)
        result = await play
        if progress is not None:
            progress(counters, total)
        return result

    records, remaining = run(main())
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (used.ru_utime - started.ru_utime) + (used.ru_stime - started.ru_stime)
    return records, remaining, cpu
