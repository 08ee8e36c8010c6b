"""Why a request is refused: one hierarchy, each error with a stable `code` for the API.

The class docstring is the default message, so raising `UnknownSection()` still says
something useful; callers usually pass a precise message and the offending field. The
API maps each class to an HTTP status in one table (`api/errors.py`).
"""

from __future__ import annotations

from eventpro.domain.model import Reason


class DomainError(Exception):
    """A rule of the domain was broken."""

    code = "invalid_request"

    def __init__(
        self, message: str | None = None, *, field: str | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message or (self.__doc__ or self.code).strip())
        self.message = str(self.args[0])
        self.field = field
        self.retry_after = retry_after  # seconds; 0 when asking again will not help


class InvalidEvent(DomainError):
    """The event definition breaks a rule."""

    code = "invalid_event"


class UnknownSection(DomainError):
    """The event has no such section."""

    code = "unknown_section"


class UnknownSeat(DomainError):
    """The event has no such seat."""

    code = "unknown_seat"


class QuantityOutOfRange(DomainError):
    """The quantity is outside 1 to the event's per-buyer limit."""

    code = "quantity_out_of_range"


class InvalidSeatSelection(DomainError):
    """The named seats must be distinct and in one reserved section."""

    code = "invalid_seat_selection"


class InvalidPurchase(DomainError):
    """Give exactly one of `section` and `seats`."""

    code = "invalid_purchase"


class EventNotFound(DomainError):
    """There is no such event."""

    code = "event_not_found"


class AdmissionPaused(DomainError):
    """Sales of this event are paused; the line keeps its order."""

    code = "event_paused"


class LineFull(DomainError):
    """The line of this event is full; try again."""

    code = "line_full"


class IdempotencyInFlight(DomainError):
    """A request with this Idempotency-Key is still in progress."""

    code = "idempotency_key_in_flight"


class IdempotencyMismatch(DomainError):
    """This Idempotency-Key was used with a different body."""

    code = "idempotency_key_reused"


class Refused(DomainError):
    """A synchronous sale could not allocate the request; `reason` says why."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(REFUSALS[reason])
        self.reason = reason
        self.code = reason.value


class InconsistentStock(Exception):
    """A section's count and its free seats disagree: stored data is damaged, and deciding
    must stop (the batch fails, its requests are retried and end in the dead-letter queue)."""


REFUSALS = {
    Reason.SOLD_OUT: "not enough tickets left in that section",
    Reason.SEAT_TAKEN: "one of the named seats is already sold",
    Reason.LIMIT_EXCEEDED: "the buyer would exceed the event's per-buyer limit",
    Reason.SALE_NOT_OPEN: "the sale is not open yet",
}
