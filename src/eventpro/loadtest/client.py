"""Fire HTTP requests at a target, closed-loop (N connections) or open-loop (a fixed rate).

One `HttpClient` with keep-alive; every answer is recorded with its latency, so callers
compute percentiles and count outcomes. Loops are bounded in count and time.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from eventpro.loadtest.http import HttpClient, run


@dataclass(frozen=True, slots=True)
class Shot:
    """One request to send: a path and a JSON body (POST), or no body (GET)."""

    path: str
    body: object = None


@dataclass(frozen=True, slots=True)
class Answer:
    index: int
    status: int  # HTTP status, or 0 when no answer came
    latency: float  # seconds
    sent_at: float  # perf_counter
    body: bytes


async def _one(client: HttpClient, index: int, shot: Shot, keep_body: bool) -> Answer:
    started = time.perf_counter()
    if shot.body is None:
        reply = await client.get(shot.path)
    else:
        reply = await client.post(shot.path, orjson.dumps(shot.body))
    latency = time.perf_counter() - started
    status = max(reply.status, 0)
    return Answer(index, status, latency, started, reply.body if keep_body else b"")


async def closed_loop(
    base: str,
    shots: Sequence[Shot],
    connections: int,
    *,
    duration: float | None = None,
    keep_body: bool = False,
    on_answer: Callable[[Answer], None] | None = None,
    timeout: float = 30.0,
) -> list[Answer]:
    """Send `shots` over `connections` concurrent connections, each as fast as it can.

    Stops after the last shot or after `duration` seconds, whichever comes first.
    """
    answers: list[Answer] = []
    cursor = iter(range(len(shots)))
    deadline = time.perf_counter() + duration if duration else float("inf")
    async with HttpClient(base, connections, timeout) as client:

        async def lane() -> None:
            for index in cursor:
                if time.perf_counter() > deadline:
                    return
                answer = await _one(client, index, shots[index], keep_body)
                answers.append(answer)
                if on_answer is not None:
                    on_answer(answer)

        await asyncio.gather(*(lane() for _ in range(connections)))
    return answers


async def open_loop(
    base: str, shots: Sequence[Shot], rate: float, connections: int, timeout: float = 30.0
) -> list[Answer]:
    """Send `shots` at `rate` per second whatever the answers' speed (no coordinated omission).

    Each request is started at its scheduled time by one pacing loop, and its latency
    counts from that time, so a slow server and a late client both show in the numbers.
    """
    answers: list[Answer] = []
    async with HttpClient(base, connections, timeout) as client:

        async def fire(index: int, scheduled: float) -> None:
            answer = await _one(client, index, shots[index], False)
            done = answer.sent_at + answer.latency
            answers.append(Answer(index, answer.status, done - scheduled, scheduled, b""))

        start = time.perf_counter()
        running: set[asyncio.Task[None]] = set()
        for index in range(len(shots)):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(fire(index, scheduled))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)
    return answers


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def one_section_event(
    name: str,
    capacity: int,
    price_cents: int,
    per_buyer_limit: int | None = None,
    venue: str = "loopback",
    starts_at: str = "2030-01-01T20:00:00Z",
) -> dict[str, object]:
    """The body of a general-admission event with one section, "Floor" (every sale the
    demo, the benches and the replay run); `per_buyer_limit` None takes the API's default."""
    body: dict[str, object] = {
        "name": name,
        "venue": venue,
        "starts_at": starts_at,
        "sections": [{"name": "Floor", "capacity": capacity, "price_cents": price_cents}],
    }
    if per_buyer_limit is not None:
        body["per_buyer_limit"] = per_buyer_limit
    return body


def one_ticket_buyers(path: str, start: int, count: int, prefix: str) -> list[Shot]:
    """Buyers `<prefix><start>`… POSTing to `path` for one ticket each of the "Floor"
    section of `one_section_event`."""
    return [
        Shot(path, {"buyer_id": f"{prefix}{i}", "section": "Floor", "quantity": 1})
        for i in range(start, start + count)
    ]


def admitted_ids(base: str, shots: Sequence[Shot], connections: int) -> list[str]:
    """Send every purchase POST, closed loop; their purchase ids, in order. Raises
    RuntimeError unless every one was admitted (202)."""
    answers = run(closed_loop(base, shots, connections, keep_body=True))
    ids = [str(orjson.loads(a.body)["purchase_id"]) for a in answers if a.status == 202]
    if len(ids) != len(shots):
        raise RuntimeError(f"only {len(ids)} of {len(shots)} purchases were admitted")
    return ids


def create_event(base: str, token: str, body: Mapping[str, object]) -> str:
    """POST an event as the admin and return its id (setup for the demo and the bench)."""
    request = urllib.request.Request(
        f"{base}/v1/events",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(orjson.loads(answer.read())["id"])
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"could not create the event: {exc.read().decode()}") from exc


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return orjson.loads(answer.read())
