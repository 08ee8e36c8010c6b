"""Domain errors: a broken rule of the input. Each has a stable `code` for the API.

The class docstring is the default message, so raising `UnknownSection()` still says
something useful; callers usually pass a precise message and the offending field.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken."""

    code = "invalid_request"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.code).strip())
        self.message = str(self.args[0])
        self.field = field


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
