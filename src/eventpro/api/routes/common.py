"""What several routes share: JSON answers, error documentation, page bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response

from eventpro.api.errors import ApiError
from eventpro.api.schemas import ErrorOut
from eventpro.ports import Page

T = TypeVar("T")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` documentation of a route's error answers."""
    return {status: {"model": ErrorOut} for status in statuses}


def page_json(page: Page[T], render: Callable[[T], Any]) -> dict[str, Any]:
    return {"items": [render(item) for item in page.items], "next_cursor": page.next_cursor}


def paged(load: Callable[[], Page[T]]) -> Page[T]:
    """Run a page query; an adapter's ValueError means the cursor is not one of ours."""
    try:
        return load()
    except ValueError as exc:
        raise ApiError(422, "invalid_cursor", str(exc), "cursor") from exc


def not_found(kind: str, identifier: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"no {kind} {identifier!r}")
