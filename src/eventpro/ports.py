"""Ports: what the services need from the outside world, and the errors adapters raise.

Two ports carry the product:

- `InventoryStore`, the system of record for tickets: events, what remains, orders and
  each purchase's decision. Every write that takes stock is conditional.
- `PurchaseQueue`, the line: admission (idempotency, per-buyer count, sold-out flags,
  positions), the durable queue of undecided requests with leases, attempts and dead
  letters, and the admission log that answers "where is my purchase".

Adapters implement both for a backend; `tests/contract` holds every adapter to the same
behaviour. An adapter's `capabilities` name what it offers beyond the contract, and the
tests that need one skip, naming it, where it is missing:

- `shared`: several adapters (processes) on the same URL see and change the same data;
- `durable`: what a call returned survives a crash of this process;
- `local`: reads are made in this process on a local file and never wait for a writer
  or a network, so an event loop may make them itself (the buyers' polls);
- `async_watch`: `watch_async` reads with an asynchronous client on the event loop.

Times are passed in (a `Clock`), so adapters never read the wall clock for rules.
"""

from __future__ import annotations

import abc
import secrets
import threading
import time
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

from eventpro.domain.model import (
    DecidedBatch,
    Decision,
    Event,
    Inventory,
    Order,
    Purchase,
    PurchaseRequest,
    PurchaseStatus,
    Reason,
    Strategy,
    Value,
)


class StoreError(Exception):
    """A backend failed to do what was asked."""


class Conflict(StoreError):
    """A conditional write lost, or a unique value already exists."""


class Unavailable(StoreError):
    """The backend cannot be reached or is busy; the same call may succeed later."""


class Misconfigured(StoreError):
    """The backend is set up wrongly (bad URL, missing schema, missing driver)."""


T = TypeVar("T")


class Page(Value, Generic[T], frozen=True):
    items: list[T]
    next_cursor: str | None


class Clock:
    """The time source; tests pass a fixed or stepping clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class IdSource:
    """Opaque identifiers with a readable prefix (`evt_`, `pur_`, `ord_`).

    They start with the time in milliseconds, so new ids land at the end of a B-tree
    index instead of on random pages (far fewer pages written per batch), and end with
    64 random bits, so they cannot be guessed from one another.
    """

    def __init__(self) -> None:
        self._tails = ""  # 16 hex digits per id to come
        self._next = 0
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        # One getrandom() call per 512 ids rather than one per id: it showed in profiles.
        with self._lock:
            if self._next >= len(self._tails):
                self._tails, self._next = secrets.token_hex(8 * 512), 0
            start = self._next
            self._next = start + 16
            tail = self._tails[start : start + 16]
        return f"{prefix}_{time.time_ns() // 1_000_000:012x}{tail}"

    def many(self, prefix: str, count: int) -> list[str]:
        """`count` new ids at once (a worker's order ids): one clock read, one getrandom()."""
        head = f"{prefix}_{time.time_ns() // 1_000_000:012x}"
        tails = secrets.token_hex(8 * count)
        return [head + tails[16 * i : 16 * i + 16] for i in range(count)]


class Admission(Value, frozen=True):
    """One request to enter an event's line, as the API received it."""

    purchase_id: str
    event_id: str
    request: PurchaseRequest
    per_buyer_limit: int
    received_at: datetime
    idempotency_key: str | None = None
    request_hash: str | None = None
    # A reason known before the line is consulted (the sale is not open yet).
    rejected_for: Reason | None = None

    def purchase(self, reason: Reason | None, position: int | None) -> Purchase:
        """The purchase this admission records: rejected for `reason` at once, or, with
        no reason, queued at `position`."""
        return Purchase(
            id=self.purchase_id,
            event_id=self.event_id,
            request=self.request,
            status=PurchaseStatus.REJECTED if reason else PurchaseStatus.QUEUED,
            position=position,
            reason=reason,
            created_at=self.received_at,
            idempotency_key=self.idempotency_key,
            request_hash=self.request_hash,
        )

    def replayed(self, earlier: Purchase) -> Admitted:
        """The answer when this admission's idempotency key already named `earlier`: that
        purchase again, or a key mismatch if this body differs from its body."""
        mismatch = earlier.request_hash != self.request_hash
        return Admitted(earlier, replayed=not mismatch, key_mismatch=mismatch)


class Admitted(Value, frozen=True):
    """The outcome of one admission: the purchase as recorded, or a key reused with another body.

    `replayed` is True when an earlier purchase with the same idempotency key was returned.
    """

    purchase: Purchase
    replayed: bool = False
    key_mismatch: bool = False


class Delivery(Value, frozen=True):
    """A leased purchase request. `attempt` is 1 on the first delivery; `receipt` is the
    adapter's own handle of this delivery (a Redis stream entry id), if it has one."""

    purchase: Purchase
    attempt: int
    lease_id: str
    receipt: str = ""


class DeadLetter(Value, frozen=True):
    purchase: Purchase
    attempts: int
    last_error: str
    failed_at: datetime


class InventoryStore(abc.ABC):
    """The system of record: events, remaining stock, orders and decisions."""

    capabilities: frozenset[str] = frozenset()

    @abc.abstractmethod
    def create_event(self, event: Event) -> None:
        """Store a new event with all its stock available; raise `Conflict` if the id exists."""

    @abc.abstractmethod
    def get_inventory(self, event_id: str) -> Inventory | None:
        """Return the event with the remaining count of each section, or None."""

    @abc.abstractmethod
    def list_events(self, limit: int, cursor: str | None) -> Page[Event]:
        """A page of events, newest first; events created while paging never shift a page."""

    @abc.abstractmethod
    def set_paused(self, event_id: str, paused: bool) -> bool:
        """Pause or resume admission for an event; return False if it does not exist."""

    @abc.abstractmethod
    def seat_map(self, event_id: str, section: str) -> list[tuple[str, bool]]:
        """Each seat label of a reserved section, in its defined order, with `available`."""

    @abc.abstractmethod
    def decide(self, purchases: Sequence[Purchase], now: datetime) -> DecidedBatch:
        """Decide purchases in the given order in one atomic transaction, never twice.

        Each takes stock with a conditional write (GA: `remaining >= quantity`; named seats:
        all still free, all or nothing; any seats: the lowest free ones). A purchase that
        was already decided returns its stored decision and takes nothing.
        """

    @abc.abstractmethod
    def get_order(self, order_id: str) -> Order | None:
        """The order with this id, or None."""

    def get_orders(self, order_ids: Sequence[str]) -> dict[str, Order]:
        """The orders with these ids, by id; unknown ids are left out. Adapters read them
        together (a group of buyers' polls); this default reads them one by one."""
        found = {order_id: self.get_order(order_id) for order_id in order_ids}
        return {order_id: order for order_id, order in found.items() if order is not None}

    @abc.abstractmethod
    def list_orders(self, event_id: str, limit: int, cursor: str | None) -> Page[Order]:
        """A page of the event's orders in allocation order."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise `Unavailable` if the backend does not answer."""

    def close(self) -> None:
        """Release connections."""


ALL_EVENTS = "*"  # a DecisionFeed's word for "requests of unknown events changed"


class DecisionFeed(abc.ABC):
    """Announces which events had requests decided (or dead-lettered, or redriven) by
    any process sharing the queue: the live streams read the line when it speaks."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> set[str]:
        """The event ids announced since the last call (or `ALL_EVENTS`), waiting up to
        `timeout` seconds for the first; empty if none came. Announcements may be lost
        (a reconnect): callers keep polling slowly as well."""

    def close(self) -> None:
        """Stop listening."""


class PurchaseQueue(abc.ABC):
    """The line: admission, the durable queue with leases and dead letters, and its log."""

    capabilities: frozenset[str] = frozenset()

    @abc.abstractmethod
    def admit(self, admissions: Sequence[Admission]) -> list[Admitted]:
        """Admit a group of requests atomically, in order (a group commit).

        For each: a known idempotency key returns the first purchase (or `key_mismatch`
        for another body); else the request is rejected at once (its `rejected_for`,
        the buyer's tickets in line or confirmed would exceed the limit, or its section
        is marked sold out), or it takes the event's next position and is appended to the
        line. Every outcome is recorded durably before this returns.
        """

    @abc.abstractmethod
    def lease(
        self, max_items: int, visibility_timeout: float, now: datetime, after: str | None = None
    ) -> list[Delivery]:
        """Atomically lease up to `max_items` requests of one event, lowest positions first.

        An event with a request already leased is skipped (one batch in flight per event,
        so decisions follow position order). Each lease adds one to the attempt count; an
        unacknowledged lease is delivered again once `visibility_timeout` seconds pass.

        With `after`, the id of the caller's lease of an event, lease the requests that
        follow that lease's batch in the event's line instead (a continuing lease: the
        caller decides them after that batch, which it may still be completing), and make
        it the event's lease. Nothing if `after` is not the event's current lease, or if a
        request up to the end of that batch is undecided outside it (retried, redriven, or
        still out with an earlier batch): a fresh lease takes those first.
        """

    @abc.abstractmethod
    def complete(self, deliveries: Sequence[Delivery], decisions: Sequence[Decision]) -> None:
        """Record the decisions and remove the requests from the line, idempotently.

        A rejected request gives its tickets back to the buyer's per-buyer count once.
        """

    @abc.abstractmethod
    def fail(self, delivery: Delivery, error: str, max_attempts: int, now: datetime) -> bool:
        """Give a lease back after an error; dead-letter the request at `max_attempts`.

        Returns True if the request moved to the dead-letter queue.
        """

    @abc.abstractmethod
    def mark_sold_out(self, event_id: str, sections: set[str]) -> None:
        """Flag sections as empty so that admission rejects new requests at once."""

    @abc.abstractmethod
    def get_purchase(self, purchase_id: str) -> Purchase | None:
        """The purchase as recorded at admission with its latest status, or None."""

    @abc.abstractmethod
    def ahead(self, purchase: Purchase) -> int:
        """How many undecided requests of the same event have a lower position."""

    def watch(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        """Each known purchase with its `ahead` (0 once decided), read as one batch.

        The live streams call this once per tick for every purchase they watch. This
        default asks `get_purchase` and `ahead` per id; adapters override it with one
        round trip (a snapshot is not required: each pair is as fresh as its own read).
        """
        found: dict[str, tuple[Purchase, int]] = {}
        for purchase_id in purchase_ids:
            purchase = self.get_purchase(purchase_id)
            if purchase is not None:
                undecided = purchase.status in (PurchaseStatus.QUEUED, PurchaseStatus.FAILED)
                found[purchase_id] = (purchase, self.ahead(purchase) if undecided else 0)
        return found

    async def watch_async(self, purchase_ids: Sequence[str]) -> dict[str, tuple[Purchase, int]]:
        """`watch` for an event loop, with the adapter's own asynchronous client
        (capability `async_watch`): no thread, and the loop goes on while it waits. The
        client lives on the loop of the first call until `close_async`."""
        raise NotImplementedError(f"{type(self).__name__} lacks the capability 'async_watch'")

    async def close_async(self) -> None:
        """Close what `watch_async` opened, on the same loop."""

    def decision_feed(self) -> DecisionFeed | None:
        """A new feed of the events whose requests were decided by any process, or None
        when the adapter has none (capability `feed`); the streams then poll."""
        return None

    @abc.abstractmethod
    def depth(self, event_id: str) -> int:
        """How many admitted requests of the event are not decided yet."""

    @abc.abstractmethod
    def line_mark(self, event_id: str) -> Hashable:
        """A cheap value that changes whenever a request of the event is admitted to its
        line, decided, dead-lettered or redriven: the live streams read their purchases
        only when it moves. (The depth is not enough: it stays put over a dead letter, a
        redrive, or as many admissions as decisions between two reads.) It never comes
        back to a value it had: a stream stores the mark it read before its purchases, and
        a dead letter then its redrive must not look like no change."""

    @abc.abstractmethod
    def list_purchases(
        self, event_id: str, status: PurchaseStatus | None, limit: int, cursor: str | None
    ) -> Page[Purchase]:
        """A page of the event's purchases in arrival order, hence by position."""

    @abc.abstractmethod
    def dead_letters(
        self, event_id: str | None, limit: int, cursor: str | None
    ) -> Page[DeadLetter]:
        """A page of dead-lettered requests, by event and position."""

    @abc.abstractmethod
    def redrive(self, event_id: str | None, purchase_ids: Sequence[str] | None) -> int:
        """Put dead letters back in line at their original positions, attempts reset."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise `Unavailable` if the backend does not answer."""

    def durability_warning(self) -> str | None:
        """Why an admitted request could be lost in a crash of the backend, or None."""
        return None

    def close(self) -> None:
        """Release connections."""


class SynchronousSeller(abc.ABC):
    """Decides each request inside its HTTP call: the designs the replay compares with
    the queue. They share the inventory store's tables, so `eventpro audit` checks them."""

    strategy: Strategy

    @abc.abstractmethod
    def sell(
        self, purchase_id: str, event: Event, request: PurchaseRequest, now: datetime
    ) -> Order:
        """Allocate `request` at once and record its order, or raise `Refused` (domain).

        `locking` and `conditional` take the stock atomically (a row lock, or a conditional
        UPDATE); `naive` deliberately does not: it reads, checks in the application and
        writes back the computed stock, as the monolith did, and oversells under load.
        A `purchase_id` that already has an order returns that order (a client's retry).
        """

    def pool_counts(self) -> dict[str, int]:
        """Requests that `waited` for a pooled connection, and that `timed_out` waiting."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
