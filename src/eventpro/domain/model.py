"""The domain model: what is sold (events, sections, seats) and what buyers ask for.

Everything here is an immutable value. Adapters store and load these values; the
rules that decide what is valid live in `rules.py`, once, for every adapter.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class Value(msgspec.Struct, frozen=True, gc=False):
    """An immutable record: the base of every value here and of the ports' records.

    A msgspec Struct, not a frozen dataclass: a worker builds thousands of purchases and
    orders a second, and a frozen dataclass's `__init__` costs six times as much (one
    `object.__setattr__` per field; docs/perf.md). Values hold no reference cycles, so the
    garbage collector does not track them (`gc=False`). Copies with changes:
    `msgspec.structs.replace`. Subclasses say `frozen=True` again, for mypy.
    """


class SectionKind(enum.StrEnum):
    GENERAL = "general"
    RESERVED = "reserved"


class EventStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    ON_SALE = "on_sale"
    SOLD_OUT = "sold_out"


class PurchaseStatus(enum.StrEnum):
    QUEUED = "queued"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (PurchaseStatus.CONFIRMED, PurchaseStatus.REJECTED)


class Strategy(enum.StrEnum):
    """How purchases are decided: the product (`queued`) or a design it replaces, which
    `eventpro replay` measures beside it."""

    NAIVE = "naive"
    LOCKING = "locking"
    CONDITIONAL = "conditional"
    QUEUED = "queued"


# What the incident's monolith (`naive`) did between reading the stock and writing it
# back: a network round trip to the database and its own code, on an event loop busy with
# the other buyers of the spike. Loopback alone leaves a window too narrow to race
# reliably (with 2 and 5 ms a negative control once sold two seats only once in 7 runs),
# and a control that sometimes does not oversell proves nothing. The replay's report says so.
NAIVE_PAUSE_S = 0.020


class Reason(enum.StrEnum):
    SOLD_OUT = "sold_out"
    SEAT_TAKEN = "seat_taken"
    LIMIT_EXCEEDED = "limit_exceeded"
    SALE_NOT_OPEN = "sale_not_open"


class Section(Value, frozen=True):
    """A general-admission section (a capacity) or a reserved one (labelled seats)."""

    name: str
    price_cents: int
    capacity: int
    seats: tuple[str, ...] = ()

    @property
    def kind(self) -> SectionKind:
        return SectionKind.RESERVED if self.seats else SectionKind.GENERAL


class Event(Value, frozen=True):
    id: str
    name: str
    venue: str
    starts_at: datetime
    sale_opens_at: datetime
    per_buyer_limit: int
    sections: tuple[Section, ...]
    created_at: datetime
    paused: bool = False

    def section(self, name: str) -> Section | None:
        for section in self.sections:  # a loop: no generator per admission
            if section.name == name:
                return section
        return None

    def section_of_seat(self, label: str) -> Section | None:
        return next((s for s in self.sections if label in s.seats), None)

    @property
    def capacity(self) -> int:
        return sum(s.capacity for s in self.sections)


class Inventory(Value, frozen=True):
    """An event with what is left of each section, as the store last saw it."""

    event: Event
    remaining: dict[str, int]

    @property
    def sold(self) -> int:
        return self.event.capacity - sum(self.remaining.values())


class PurchaseRequest(Value, frozen=True):
    """What a buyer asked for, resolved against the event: one section, some seats or a count."""

    buyer_id: str
    section: str
    quantity: int
    seats: tuple[str, ...] = ()
    amount_cents: int = 0


class Purchase(Value, frozen=True):
    """A purchase request as recorded at admission, with its fate so far."""

    id: str
    event_id: str
    request: PurchaseRequest
    status: PurchaseStatus
    position: int | None
    reason: Reason | None
    created_at: datetime
    order_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None

    @property
    def buyer_id(self) -> str:
        return self.request.buyer_id


class Order(Value, frozen=True):
    """What a confirmed purchase produced."""

    id: str
    event_id: str
    buyer_id: str
    purchase_id: str
    section: str
    seats: tuple[str, ...]
    quantity: int
    amount_cents: int
    created_at: datetime


class Decision(Value, frozen=True):
    """The final outcome of one purchase: an order, or a reason it was rejected."""

    purchase_id: str
    status: PurchaseStatus
    reason: Reason | None = None
    order: Order | None = None


class DecidedBatch(Value, frozen=True):
    """What a store decided for a batch, and which sections it left empty."""

    decisions: list[Decision]
    emptied_sections: set[str] = msgspec.field(default_factory=set)
