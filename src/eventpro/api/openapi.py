"""`/openapi.json` as the contract of `docs/http-api.md`, not FastAPI's defaults.

FastAPI documents what its own machinery would answer: `{"detail": …}` 422s, request
bodies inline with unresolvable `$defs`, every answer as JSON. This routes' answers are
built elsewhere (`services/wire.py`), so the generated document is corrected once, here:
request bodies are components, every error is `{"error": …}`, 429 and 503 carry
`Retry-After`, `/metrics` is Prometheus text, the streams are `text/event-stream`, admin
operations declare the bearer scheme, and the links that chain an event, a purchase and
its order are declared for stateful testing. schemathesis holds the server to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from eventpro.api.deps import require_admin
from eventpro.services.wire import EventIn, PurchaseIn, RedriveIn

REF = "#/components/schemas/{model}"
ERROR = {"$ref": "#/components/schemas/ErrorOut"}
RETRY_AFTER = {
    "description": "seconds to wait before asking again",
    "schema": {"type": "integer", "minimum": 1},
}
# Operations that reach no backend (every other one may answer 503).
NO_BACKEND = {("get", "/healthz"), ("get", "/metrics")}
SSE_EVENT = {  # one Server-Sent Event; its `data` is the resource's JSON
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string", "enum": ["purchase", "event"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["data"],
}
TEXT = {  # (method, path) -> (media type, schema) of its 200
    ("get", "/metrics"): ("text/plain; version=0.0.4", {"type": "string"}),
    ("get", "/v1/purchases/{purchase_id}/stream"): ("text/event-stream", SSE_EVENT),
    ("get", "/v1/events/{event_id}/stream"): ("text/event-stream", SSE_EVENT),
}
LINKS = {  # (method, path, status) -> links of that answer
    ("post", "/v1/events", "201"): {
        "GetEvent": ("getEvent", {"event_id": "$response.body#/id"}),
        "BuyTickets": ("buyTickets", {"event_id": "$response.body#/id"}),
    },
    ("post", "/v1/events/{event_id}/purchases", "202"): {
        "GetPurchase": ("getPurchase", {"purchase_id": "$response.body#/purchase_id"}),
    },
    ("get", "/v1/purchases/{purchase_id}", "200"): {
        "GetOrder": ("getOrder", {"order_id": "$response.body#/order/order_id"}),
    },
}
OPERATION_IDS = {
    ("get", "/v1/events/{event_id}"): "getEvent",
    ("post", "/v1/events/{event_id}/purchases"): "buyTickets",
    ("get", "/v1/purchases/{purchase_id}"): "getPurchase",
    ("get", "/v1/orders/{order_id}"): "getOrder",
}


def install(app: FastAPI) -> None:
    """Serve the corrected document at `/openapi.json`."""
    app.openapi = _builder(app)  # type: ignore[method-assign]


def _builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = corrected(doc, _admin_operations(app))
        return app.openapi_schema

    return build


def corrected(doc: dict[str, Any], admin: set[tuple[str, str]]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _, bodies = models_json_schema(
        [(model, "validation") for model in (EventIn, PurchaseIn, RedriveIn)], ref_template=REF
    )
    for name, schema in bodies["$defs"].items():
        schemas[name] = _without_nulls(schema)
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "the admin token"}
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            _correct(method, path, operation, admin)
    return doc


def _without_nulls(schema: dict[str, Any]) -> dict[str, Any]:
    """A request body's schema without `null` as a choice: optional fields are left out
    (`Strict` refuses null), and pydantic documents `X | None` as `anyOf [X, null]`."""
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        choices = [c for c in prop.get("anyOf", ()) if c != {"type": "null"}]
        if len(choices) == 1:
            prop = {
                **{k: v for k, v in prop.items() if k not in ("anyOf", "default")},
                **choices[0],
            }
        properties[name] = prop
    return {**schema, "properties": properties}


def _correct(
    method: str, path: str, operation: dict[str, Any], admin: set[tuple[str, str]]
) -> None:
    key = (method, path)
    responses = operation["responses"]
    if key not in NO_BACKEND:
        responses.setdefault("503", {"description": "a backend is unavailable"})
    if key in admin:
        operation["security"] = [{"bearer": []}]
        responses.setdefault("401", {"description": "no valid admin token"})
    if key in OPERATION_IDS:
        operation["operationId"] = OPERATION_IDS[key]
    for status, response in responses.items():
        _correct_response(key, status, response)


def _correct_response(key: tuple[str, str], status: str, response: dict[str, Any]) -> None:
    if status.startswith(("4", "5")):
        response["content"] = {"application/json": {"schema": ERROR}}
        response.setdefault("description", "an error")
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": RETRY_AFTER}
    elif key in TEXT:
        media_type, schema = TEXT[key]
        response["content"] = {media_type: {"schema": schema}}
    links = LINKS.get((*key, status))
    if links:
        response["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
        }


def api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every route of an app, through the routers it includes (FastAPI wraps each one;
    this app includes its routers without a prefix)."""
    found: list[APIRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += api_routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def _admin_operations(app: FastAPI) -> set[tuple[str, str]]:
    """The (method, path) of every route that depends on `require_admin`."""
    found = set()
    for route in api_routes(app.routes):
        calls = {d.call for d in route.dependant.dependencies}
        if require_admin in calls:
            found |= {(m.lower(), route.path) for m in route.methods or ()}
    return found
