"""Every error answer has one shape: `{"error": {"code", "message", "field"?}}`.

Exceptions from the domain, the services and the ports are mapped here to stable codes
and statuses, so routes raise and never build error bodies themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from eventpro.domain.errors import (
    AdmissionPaused,
    DomainError,
    EventNotFound,
    IdempotencyInFlight,
    LineFull,
    Refused,
)
from eventpro.ports import StoreError, Unavailable

log = logging.getLogger(__name__)

# The status of each refusal; any other `DomainError` is a well-formed request that
# breaks a rule: 422.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    EventNotFound: 404,
    AdmissionPaused: 429,
    LineFull: 429,
    IdempotencyInFlight: 409,
    Refused: 409,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error answer raised by a route."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return Response(
        orjson.dumps({"error": body}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _field_of(error: dict[str, Any]) -> str | None:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    return ".".join(location) or None


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "malformed_json", "the body is not valid JSON")
    field = _field_of(first)
    message = str(first.get("msg", "invalid request"))
    code = "invalid_cursor" if field == "cursor" else "validation_error"
    return error_response(422, code, f"{field}: {message}" if field else message, field)


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def error_for(exc: Exception, retry_after: int) -> Response:
    """The contract's answer to an exception raised while answering a request."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)
    if isinstance(exc, DomainError):
        status = DOMAIN_STATUS.get(type(exc), 422)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return error_response(status, exc.code, exc.message, exc.field, headers)
    if isinstance(exc, Unavailable):
        # the cause (host names, ports, driver messages) goes to the log, not to callers
        log.warning("backend unavailable: %s", exc)
        message = f"a backend is unavailable; try again in {retry_after} s"
        headers = {"Retry-After": str(retry_after)}
        return error_response(503, "backend_unavailable", message, headers=headers)
    if isinstance(exc, StoreError):
        log.error("backend error: %s", exc)
        return error_response(500, "internal_error", "the backend failed; this is a bug")
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error; this is a bug")


def install(app: Starlette, retry_after: int) -> None:
    """Register the handlers that turn exceptions into error answers."""

    async def _answer(_: Request, exc: Exception) -> Response:
        return error_for(exc, retry_after)

    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for kind in (ApiError, DomainError, StoreError, Exception):
        app.add_exception_handler(kind, _answer)
