"""Reading JSON bodies by hand, so that each failure gets the contract's status.

Wrong content type and malformed JSON are 400; a well-formed body that breaks a rule is
422 naming the field. Routes document their body with `openapi_extra` (see `documented`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from eventpro.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: Request, model: type[M]) -> M:
    return parse_json(request.headers.get("content-type", ""), await request.body(), model)


def parse_json(content_type: str, raw: bytes, model: type[M]) -> M:
    """`raw` as `model`, if `content_type` says JSON."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(400, "unsupported_media_type", "send the body as application/json")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _as_api_error(exc) from None


def _as_api_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    if first["type"] == "json_invalid" or first["type"] == "json_type":
        return ApiError(400, "malformed_json", "the body is not a valid JSON object")
    field = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "extra_forbidden":
        return ApiError(422, "unknown_field", f"unknown field {field!r}", field)
    message = first["msg"]
    return ApiError(422, "validation_error", f"{field}: {message}" if field else message, field)


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` that documents a JSON request body read by `parse_body` (the model
    itself is a component: see `api/openapi.py`)."""
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}
    }
