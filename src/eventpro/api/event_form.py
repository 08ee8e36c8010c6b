"""The dashboard's event creation form: its fields to `wire.EventIn`, errors to fields.

The form is validated by the same `EventIn` and `create_event_from` as `POST /v1/events`;
only the sections are typed differently, one a line: `name; price in cents; capacity`
for general admission or `name; price in cents; A1 A2 A3` for reserved seats.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from eventpro.services.wire import EventIn

FIELDS = ("name", "venue", "starts_at", "sale_opens_at", "per_buyer_limit", "sections")


class FormErrors(Exception):
    """The form's errors, each message under the input it belongs to."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _moment(value: str) -> str | None:
    """An `<input type=datetime-local>` value, read as UTC (the form says so)."""
    value = value.strip()
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", value):
        value += ":00"
    return value if value.endswith("Z") or "+" in value[10:] else value + "Z"


def _section(number: int, line: str) -> dict[str, Any]:
    parts = [part.strip() for part in line.split(";")]
    if len(parts) != 3 or not parts[1].isdigit():
        raise FormErrors(
            {"sections": f"line {number}: write 'name; price in cents; capacity or seat labels'"}
        )
    name, price, rest = parts
    section: dict[str, Any] = {"name": name, "price_cents": int(price)}
    if rest.isdigit():
        section["capacity"] = int(rest)
    else:
        section["seats"] = [label for label in re.split(r"[\s,]+", rest) if label]
    return section


def event_body(form: dict[str, str]) -> dict[str, Any]:
    """The JSON body of `POST /v1/events` that the form's values describe."""
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "venue": form.get("venue", ""),
        "starts_at": _moment(form.get("starts_at", "")) or "",
    }
    opens = _moment(form.get("sale_opens_at", ""))
    if opens:
        body["sale_opens_at"] = opens
    limit = form.get("per_buyer_limit", "").strip()
    if limit:
        body["per_buyer_limit"] = int(limit) if limit.isdigit() else limit
    lines = [line for line in form.get("sections", "").splitlines() if line.strip()]
    body["sections"] = [_section(n, line) for n, line in enumerate(lines, start=1)]
    return body


def parse_event_form(form: dict[str, str]) -> EventIn:
    """Validate the form as `POST /v1/events` validates its body; raise `FormErrors`."""
    try:
        return EventIn.model_validate(event_body(form))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        field = loc[0] if loc and loc[0] in FIELDS else "name"
        message = str(first["msg"])
        if field == "sections" and len(loc) > 1 and loc[1].isdigit():
            message = f"line {int(loc[1]) + 1}: {'.'.join(loc[2:]) or 'section'}: {message}"
        raise FormErrors({field: message}) from None


def field_of(field: str | None) -> str:
    """The input that a domain error's `field` belongs to."""
    return field if field in FIELDS else "name"
