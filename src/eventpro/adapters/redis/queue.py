"""`RedisQueue`: admission, the line and the admission log in Redis, one Lua step each.

Every change is one server-side script (`*.lua` beside this file), so it is atomic:
admission (idempotency key, per-buyer count, sold-out flag, position, append to the
event's stream), leasing one batch of one event (consumer group `workers`, stale entries
reclaimed with XAUTOCLAIM), completing or failing deliveries (poison requests move to the
dead-letter stream), redrive. Times come from the caller's clock, so leases expire by the
same clock as on every other backend.

Keys (prefix `P`, event `E`): `P:p:<purchase>` hash; `P:stream:E` the event's stream of
admitted requests; `P:line:E` zset of undecided requests by position (for `ahead` and
`depth`); `P:redriven:E` redriven dead letters waiting for a lease; `P:deadline:E` dead
letters by position and `P:dlq` the dead-letter stream; `P:deadmoves:E` dead letters
made and redriven, a count that only grows; `P:log:E` zset by arrival;
`P:next:E` positions; `P:held:E` per-buyer counts; `P:key:E` idempotency keys;
`P:soldout:E` sold-out sections; `P:lease:E` the event lease; `P:active` events in line;
`P:decided` the channel on which finish.lua and `redrive` name the events that changed.
Keys are built inside the scripts, so this targets one Redis server, not a Cluster.
"""

from __future__ import annotations

import operator
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import msgspec
import orjson
import redis
import redis.asyncio
from redis.commands.core import AsyncScript

from eventpro.adapters.paging import decode_cursor
from eventpro.domain.model import (
    Decision,
    Purchase,
    PurchaseRequest,
    PurchaseStatus,
    Reason,
)
from eventpro.ports import (
    ALL_EVENTS,
    Admission,
    Admitted,
    DeadLetter,
    DecisionFeed,
    Delivery,
    IdSource,
    Page,
    PurchaseQueue,
    StoreError,
    Unavailable,
)

SOCKET_TIMEOUT = 5.0  # seconds
# The sync client and watch_async's asyncio client are made alike.
CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": SOCKET_TIMEOUT,
    "socket_connect_timeout": SOCKET_TIMEOUT,
    "decode_responses": True,
}
LEASES_REMEMBERED = 256  # per process: far more than its worker loops hold at once
# The purchase fields a stream entry carries (and lease.lua packs for redriven ones).
PACKED = (
    "event_id", "buyer_id", "section", "seats", "quantity", "amount", "key", "hash",
    "created_at",
)  # fmt: skip
# The fields watch.lua reads of each purchase, in its order (then `ahead`).
WATCHED = (
    "event_id", "buyer_id", "section", "seats", "quantity", "amount", "position", "status",
    "reason", "created_at", "order_id", "key", "hash",
)  # fmt: skip
_in_watched_order = operator.itemgetter(*WATCHED)
WATCH_CHUNK = 1_000  # purchases per watch.lua call: a tick of 10,000 streams is ten


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Translate redis-py errors into the port's `StoreError` family."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
        raise Unavailable(f"redis: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreError(f"redis: {exc}") from exc


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _cursor(cursor: str | None) -> int:
    return decode_cursor(cursor) if cursor else 0


# A dead-letter stream entry id "ms-seq" as one cursor of at most 18 digits:
# (ms - ENTRY_EPOCH_MS) * ENTRY_SEQ + seq, good until the 2050s.
ENTRY_EPOCH_MS = 1_700_000_000_000
ENTRY_SEQ = 1_000_000


def _digits_of(entry: str) -> int:
    ms, seq = entry.split("-")
    return (int(ms) - ENTRY_EPOCH_MS) * ENTRY_SEQ + int(seq)


def _entry_of(digits: int) -> str:
    ms, seq = divmod(digits, ENTRY_SEQ)
    return f"{ms + ENTRY_EPOCH_MS}-{seq}"


class RedisQueue(PurchaseQueue):
    capabilities = frozenset({"durable", "shared", "feed", "async_watch"})

    def __init__(self, url: str, ids: IdSource | None = None) -> None:
        parts = urlsplit(url)
        self.prefix = parse_qs(parts.query).get("prefix", ["eventpro"])[0]
        self._server = urlunsplit(parts._replace(query=""))
        self.client = redis.Redis.from_url(self._server, **CLIENT_OPTIONS)
        self._async_watch: AsyncScript | None = None  # on its own client: see watch_async
        self._ids = ids or IdSource()
        self._consumer = self._ids.new("consumer")  # this process's name in consumer groups
        # the event of each lease handed out lately, for continuing leases
        self._leased_events: OrderedDict[str, str] = OrderedDict()
        self._admit = self.client.register_script(_script("admit.lua"))
        self._lease = self.client.register_script(_script("lease.lua"))
        self._finish = self.client.register_script(_script("finish.lua"))
        self._redrive = self.client.register_script(_script("redrive.lua"))
        self._watch = self.client.register_script(_script("watch.lua"))
        self.ping()

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        payload = []
        for a in admissions:
            r = a.request
            item = {
                "id": a.purchase_id,
                "event_id": a.event_id,
                "buyer_id": r.buyer_id,
                "section": r.section,
                "seats": orjson.dumps(r.seats).decode(),
                "quantity": r.quantity,
                "amount": r.amount_cents,
                "limit": a.per_buyer_limit,
                "key": a.idempotency_key or "",
                "hash": a.request_hash or "",
                "rejected_for": a.rejected_for.value if a.rejected_for else "",
                "created_at": a.received_at.isoformat(),
            }
            # what a worker needs, carried in the stream entry: leases read no hashes
            item["packed"] = orjson.dumps([item[f] for f in PACKED]).decode()
            payload.append(item)
        with mapped_errors():
            results = self._admit(args=[self.prefix, orjson.dumps(payload)])
        earlier = self._load([r[0] for r in results if r[1] != "new"])
        admitted = []
        for admission, (_, outcome, *fields) in zip(admissions, results, strict=True):
            if outcome == "new":
                admitted.append(Admitted(_admitted(admission, *fields)))
            else:
                first = earlier.pop(0)
                admitted.append(
                    Admitted(first, outcome == "replayed", key_mismatch=outcome == "mismatch")
                )
        return admitted

    def _load(self, ids: Sequence[str]) -> list[Purchase]:
        with mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            for purchase_id in ids:
                pipe.hgetall(self._key("p", purchase_id))
            rows = pipe.execute()
        return [_purchase_of(purchase_id, row) for purchase_id, row in zip(ids, rows, strict=True)]

    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        lease_id = self._ids.new("lease")
        event_of_after = self._leased_events.get(after or "", "")
        if after and not event_of_after:
            return []  # not a lease this process handed out
        args: list[str | float] = [self.prefix, now.timestamp(), visibility_timeout, max_items]
        args += [lease_id, self._consumer, after or "", event_of_after]
        with mapped_errors():
            found = self._lease(args=args)
        if not found:
            return []
        self._leased_events[lease_id] = found[0]
        while len(self._leased_events) > LEASES_REMEMBERED:
            self._leased_events.popitem(last=False)
        return [
            Delivery(_unpacked(purchase_id, int(position), packed), int(n), lease_id, entry)
            for purchase_id, n, position, packed, entry in found[1]
        ]

    def _run_finish(
        self, deliveries: Sequence[Delivery], items: list[tuple[str | int, ...]]
    ) -> list[int]:
        """finish.lua over `items`, 7 values per delivery, sent as one MessagePack value:
        packing 3,500 arguments cost the client more than the script's work."""
        event_id = deliveries[0].purchase.event_id
        args = [self.prefix, event_id, deliveries[0].lease_id]
        with mapped_errors():
            return [int(x) for x in self._finish(args=[*args, msgspec.msgpack.encode(items)])]

    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        if not deliveries:
            return
        by_id = {d.purchase_id: d for d in decisions}
        items: list[tuple[str | int, ...]] = []
        for delivery in deliveries:
            purchase = delivery.purchase
            decision = by_id[purchase.id]
            items.append(
                (
                    purchase.id,
                    delivery.receipt,
                    purchase.request.buyer_id,
                    purchase.request.quantity,
                    decision.status.value,
                    decision.reason.value if decision.reason else "",
                    decision.order.id if decision.order else "",
                )
            )
        self._run_finish(deliveries, items)

    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        dead = delivery.attempt >= max_attempts
        item: tuple[str | int, ...] = (
            delivery.purchase.id,
            delivery.receipt,
            delivery.attempt,
            now.isoformat(),
            "failed",
            error,
            "1" if dead else "0",
        )
        return self._run_finish([delivery], [item])[0] == 1 and dead

    def mark_sold_out(self, event_id: str, sections: set[str]) -> None:
        if sections:
            with mapped_errors():
                self.client.sadd(self._key("soldout", event_id), *sorted(sections))

    def get_purchase(self, purchase_id: str) -> Purchase | None:
        with mapped_errors():
            row = cast(dict[str, str], self.client.hgetall(self._key("p", purchase_id)))
        return _purchase_of(purchase_id, row) if row else None

    def ahead(self, purchase: Purchase) -> int:
        if purchase.position is None:
            return 0
        below = f"({purchase.position}"
        with mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zcount(self._key("line", purchase.event_id), "-inf", below)
            pipe.zcount(self._key("deadline", purchase.event_id), "-inf", below)
            return sum(int(n) for n in pipe.execute())

    def watch(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        """One call of watch.lua: every purchase's fields and its `ahead`. Pipelining a
        hash and two counts per purchase cost the client 35 µs a purchase to encode and
        parse (docs/perf.md)."""
        watched: dict[str, tuple[Purchase, int]] = {}
        for chunk in _watch_chunks(purchase_ids):
            with mapped_errors():
                found = self._watch(args=[self.prefix, *chunk])
            watched.update(_watched(chunk, found))
        return watched

    async def watch_async(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        """watch.lua from the event loop, with redis-py's asyncio client: a group of polls
        read in a thread cost the server about 20 µs more a poll (docs/perf.md)."""
        if self._async_watch is None:
            client = redis.asyncio.Redis.from_url(self._server, **CLIENT_OPTIONS)
            self._async_watch = client.register_script(_script("watch.lua"))
        watched: dict[str, tuple[Purchase, int]] = {}
        for chunk in _watch_chunks(purchase_ids):
            with mapped_errors():
                found = await self._async_watch(args=[self.prefix, *chunk])
            watched.update(_watched(chunk, found))
        return watched

    async def close_async(self) -> None:
        script, self._async_watch = self._async_watch, None
        if script is not None:
            await cast(redis.asyncio.Redis, script.registered_client).aclose()

    def depth(self, event_id: str) -> int:
        with mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(self._key("line", event_id))
            pipe.zcard(self._key("deadline", event_id))
            return sum(int(n) for n in pipe.execute())

    def line_mark(self, event_id: str) -> Hashable:
        """Positions given, undecided in line, dead letters, and dead letters made and
        redriven (a redrive puts the first three back as they were): one round trip."""
        with mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self._key("next", event_id))
            pipe.zcard(self._key("line", event_id))
            pipe.zcard(self._key("deadline", event_id))
            pipe.get(self._key("deadmoves", event_id))
            return tuple(pipe.execute())

    def _page(
        self, key: str, limit: int, cursor: str | None, keep: Callable[[Purchase], bool]
    ) -> tuple[list[Purchase], str | None]:
        """Walk a zset scored by arrival after the cursor, keeping items `keep` accepts."""
        after = _cursor(cursor)
        chosen: list[tuple[Purchase, int]] = []
        while len(chosen) <= limit:
            with mapped_errors():
                found = cast(
                    list[tuple[str, float]],
                    self.client.zrangebyscore(
                        key, f"({after}", "+inf", start=0, num=limit + 1, withscores=True
                    ),
                )
            if not found:
                break
            loaded = self._load([member for member, _ in found])
            chosen += [(p, int(seq)) for p, (_, seq) in zip(loaded, found, strict=True) if keep(p)]
            after = int(found[-1][1])
        more = len(chosen) > limit
        chosen = chosen[:limit]
        return [p for p, _ in chosen], (str(chosen[-1][1]) if more else None)

    def list_purchases(
        self, event_id: str, status: PurchaseStatus | None, limit: int, cursor: str | None
    ) -> Page[Purchase]:
        items, next_cursor = self._page(
            self._key("log", event_id),
            limit,
            cursor,
            lambda p: status is None or p.status is status,
        )
        return Page(items, next_cursor)

    def dead_letters(
        self, event_id: str | None, limit: int, cursor: str | None
    ) -> Page[DeadLetter]:
        """Walk the dead-letter stream after the cursor (a stream entry id, as digits)."""
        after = f"({_entry_of(decode_cursor(cursor))}" if cursor else "-"
        chosen: list[tuple[str, str]] = []  # (entry id, purchase id)
        while len(chosen) <= limit:
            with mapped_errors():
                found = cast(
                    list[tuple[str, dict[str, str]]],
                    self.client.xrange(self._key("dlq"), after, "+", count=limit + 1),
                )
            if not found:
                break
            chosen += [
                (entry, fields["id"])
                for entry, fields in found
                if event_id in (None, fields["event_id"])
            ]
            after = f"({found[-1][0]}"
        more = len(chosen) > limit
        chosen = chosen[:limit]
        purchases = self._load([purchase_id for _, purchase_id in chosen])
        with mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            for p in purchases:
                pipe.hmget(self._key("p", p.id), "attempts", "last_error", "failed_at")
            details = pipe.execute()
        letters = [
            DeadLetter(p, int(attempts), error, datetime.fromisoformat(failed_at))
            for p, (attempts, error, failed_at) in zip(purchases, details, strict=True)
        ]
        return Page(letters, str(_digits_of(chosen[-1][0])) if more else None)

    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        with mapped_errors():
            count = self._redrive(
                args=[self.prefix, event_id or "", orjson.dumps(list(purchase_ids or []))]
            )
            if count:
                self.client.publish(self._key("decided"), event_id or ALL_EVENTS)
        return int(count)

    def decision_feed(self) -> DecisionFeed:
        """A subscription to this prefix's `decided` channel (Redis pub/sub)."""
        return RedisDecisionFeed(self.client, self._key("decided"))

    def ping(self) -> None:
        with mapped_errors():
            self.client.ping()

    def durability_warning(self) -> str | None:
        """A 202 promises survival of a crash: only an append-only file keeps that promise."""
        try:
            config = cast(dict[str, str], self.client.config_get("append*"))
        except redis.ResponseError:  # CONFIG renamed or forbidden
            return "cannot tell whether Redis persists its data (CONFIG GET is refused)"
        except redis.RedisError:
            return "cannot reach Redis to check whether it persists its data"
        if config.get("appendonly") != "yes":
            return (
                "Redis keeps no append-only file (appendonly no): a Redis restart loses"
                " admitted requests; set appendonly yes with appendfsync everysec (at most"
                " a second lost) or always (nothing lost)"
            )
        if config.get("appendfsync") == "no":
            return "appendfsync no: the OS decides when admitted requests reach the disk"
        return None

    def close(self) -> None:
        self.client.close()


def _admitted(admission: Admission, position: str, status: str, reason: str) -> Purchase:
    """The purchase admit.lua just stored, built from what was sent and what it decided
    (`status` is `rejected` exactly when there is a reason)."""
    return admission.purchase(
        Reason(reason) if reason else None, int(position) if position else None
    )


STATUSES = {s.value: s for s in PurchaseStatus}
QUEUED = PurchaseStatus.QUEUED
REASONS = {r.value: r for r in Reason}  # dict lookups: workers decode thousands a second


def _unpacked(purchase_id: str, position: int, packed: str) -> Purchase:
    """A leased purchase (still queued) from its stream entry's packed fields.

    Arguments by position: a worker builds 500 of these per batch, and keywords cost a
    third more."""
    event_id, buyer_id, section, seats, quantity, amount, key, digest, created_at = orjson.loads(
        packed
    )
    labels = () if seats == "[]" else tuple(orjson.loads(seats))
    request = PurchaseRequest(buyer_id, section, int(quantity), labels, int(amount))
    moment = datetime.fromisoformat(created_at)
    return Purchase(
        purchase_id,
        event_id,
        request,
        QUEUED,
        position,
        None,
        moment,
        None,
        key or None,
        digest or None,
    )


def _watch_chunks(purchase_ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(purchase_ids), WATCH_CHUNK):
        yield purchase_ids[start : start + WATCH_CHUNK]


def _watched(
    purchase_ids: Sequence[str], found: list[list[str] | int]
) -> Iterator[tuple[str, tuple[Purchase, int]]]:
    """watch.lua's answer for `purchase_ids`: each known purchase with its `ahead`."""
    for purchase_id, values in zip(purchase_ids, found, strict=True):
        if isinstance(values, list):
            yield purchase_id, (_purchase(purchase_id, values), int(values[-1]))


def _purchase_of(purchase_id: str, row: dict[str, str]) -> Purchase:
    """A purchase from its hash (HGETALL)."""
    return _purchase(purchase_id, _in_watched_order(row))


def _purchase(purchase_id: str, values: Sequence[str]) -> Purchase:
    """A purchase from its hash's values in the order of `WATCHED` (more may follow): by
    position, since a dict of them cost 1.5 µs of a poll's 3.4 here."""
    event_id, buyer, section, seats, quantity, amount, position, status = values[:8]
    reason, created_at, order_id, key, request_hash = values[8:13]
    return Purchase(
        id=purchase_id,
        event_id=event_id,
        request=PurchaseRequest(
            buyer_id=buyer,
            section=section,
            quantity=int(quantity),
            seats=() if seats == "[]" else tuple(orjson.loads(seats)),
            amount_cents=int(amount),
        ),
        status=STATUSES[status],
        position=int(position) if position else None,
        reason=REASONS[reason] if reason else None,
        created_at=datetime.fromisoformat(created_at),
        order_id=order_id or None,
        idempotency_key=key or None,
        request_hash=request_hash or None,
    )


class RedisDecisionFeed(DecisionFeed):
    """The event ids published on a channel by `complete`, `fail` and `redrive`."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        with mapped_errors():
            self._pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            self._pubsub.subscribe(channel)
            # Wait for the confirmation: what is published after this returns is heard.
            deadline = time.monotonic() + SOCKET_TIMEOUT
            while time.monotonic() < deadline:
                message = self._pubsub.get_message(timeout=0.1)
                if message is not None and message["type"] == "subscribe":
                    break

    def wait(self, timeout: float) -> set[str]:
        found: set[str] = set()
        with mapped_errors():
            message = self._pubsub.get_message(timeout=timeout)
            while message is not None:
                if message["type"] == "message":
                    found.add(str(message["data"]))
                message = self._pubsub.get_message(timeout=0)
        return found

    def close(self) -> None:
        self._pubsub.close()
