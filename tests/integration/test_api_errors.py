"""Bad input over real HTTP: every documented status with its error code, never a 500."""

from __future__ import annotations

import httpx
import pytest

GOOD = {"buyer_id": "user_1", "section": "Floor", "quantity": 1}


def _error(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def test_malformed_json_and_wrong_content_type_are_400(server, new_event) -> None:
    url = f"/v1/events/{new_event()['id']}/purchases"
    json_headers = {"Content-Type": "application/json"}
    _error(server.client.post(url, content=b"{bad", headers=json_headers), 400, "malformed_json")
    _error(server.client.post(url, content=b"", headers=json_headers), 400, "malformed_json")
    form = server.client.post(url, data={"buyer_id": "x"})
    _error(form, 400, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "buyer_id": "ünïcode"}, "buyer_id"),
        ({**GOOD, "buyer_id": "x" * 65}, "buyer_id"),
        ({**GOOD, "buyer_id": ""}, "buyer_id"),
        ({**GOOD, "quantity": 10**30}, "quantity"),
        ({**GOOD, "quantity": 0}, "quantity"),
        ({**GOOD, "quantity": "2"}, "quantity"),
        ({**GOOD, "quantity": True}, "quantity"),
        ({**GOOD, "section": 7}, "section"),
        ({**GOOD, "surprise": 1}, "surprise"),
        ({"section": "Floor", "quantity": 1}, "buyer_id"),
    ],
)
def test_wrong_fields_are_422_naming_the_field(server, new_event, body, field) -> None:
    answer = server.client.post(f"/v1/events/{new_event()['id']}/purchases", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({**GOOD, "section": "Balcony"}, "unknown_section", "section"),
        ({**GOOD, "quantity": 5}, "quantity_out_of_range", "quantity"),
        ({"buyer_id": "u", "seats": ["Z9"]}, "unknown_seat", "seats"),
        ({"buyer_id": "u", "seats": ["A1", "A1"]}, "invalid_seat_selection", "seats"),
        ({"buyer_id": "u", "seats": ["A1"], "section": "A"}, "invalid_purchase", "section"),
        ({"buyer_id": "u"}, "invalid_purchase", "section"),
    ],
)
def test_rules_broken_are_422_with_stable_codes(server, new_event, body, code, field) -> None:
    answer = server.client.post(f"/v1/events/{new_event()['id']}/purchases", json=body)
    assert _error(answer, 422, code)["field"] == field


def test_oversize_body_is_413(server, new_event) -> None:
    url = f"/v1/events/{new_event()['id']}/purchases"
    big = {**GOOD, "buyer_id": "x" * 20_000}
    _error(server.client.post(url, json=big), 413, "body_too_large")

    def chunks():
        yield b'{"buyer_id": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    chunked = server.client.post(
        url, content=chunks(), headers={"Content-Type": "application/json"}
    )
    _error(chunked, 413, "body_too_large")


def test_unknown_ids_are_404(server) -> None:
    _error(server.client.get("/v1/events/evt_nope"), 404, "event_not_found")
    _error(server.client.post("/v1/events/evt_nope/purchases", json=GOOD), 404, "event_not_found")
    _error(server.client.get("/v1/purchases/pur_nope"), 404, "purchase_not_found")
    _error(server.client.get("/v1/orders/ord_nope"), 404, "order_not_found")
    _error(server.client.get("/v1/purchases/pur_nope/stream"), 404, "purchase_not_found")
    _error(server.admin.get("/v1/events/evt_nope/orders"), 404, "event_not_found")
    _error(server.client.get("/v1/nothing-here"), 404, "not_found")
    _error(server.client.delete("/healthz"), 405, "method_not_allowed")


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc", "Bearer"])
def test_admin_endpoints_without_the_token_are_401(server, new_event, authorization) -> None:
    event_id = new_event()["id"]
    headers = {"Authorization": authorization} if authorization else {}
    calls = [
        ("POST", "/v1/events", {"name": "x"}),
        ("GET", f"/v1/events/{event_id}/orders", None),
        ("GET", f"/v1/events/{event_id}/purchases", None),
        ("GET", "/v1/admin/dead-letters", None),
        ("POST", "/v1/admin/dead-letters/redrive", {"event_id": event_id}),
        ("POST", f"/v1/admin/events/{event_id}/pause", None),
        ("POST", f"/v1/admin/events/{event_id}/resume", None),
    ]
    for method, path, body in calls:
        answer = server.client.request(method, path, json=body, headers=headers)
        _error(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_bad_event_definitions_are_422(server) -> None:
    base = {"name": "n", "venue": "v", "starts_at": "2030-01-01T00:00:00Z"}
    cases = [
        ({**base, "sections": []}, "validation_error"),
        (
            {**base, "sections": [{"name": "A", "price_cents": 1, "capacity": 2, "seats": ["1"]}]},
            "validation_error",
        ),
        (
            {**base, "sections": [{"name": "A", "price_cents": 1, "capacity": 10**8}]},
            "validation_error",
        ),
        (
            {
                **base,
                "per_buyer_limit": 101,
                "sections": [{"name": "A", "price_cents": 1, "capacity": 1}],
            },
            "validation_error",
        ),
        (
            {
                **base,
                "starts_at": "tomorrow",
                "sections": [{"name": "A", "price_cents": 1, "capacity": 1}],
            },
            "validation_error",
        ),
        (
            {
                **base,
                "sections": [
                    {"name": "A", "price_cents": 1, "seats": ["1"]},
                    {"name": "B", "price_cents": 1, "seats": ["1"]},
                ],
            },
            "invalid_event",
        ),
        (
            {
                **base,
                "sections": [
                    {"name": "A", "price_cents": 1, "capacity": 1},
                    {"name": "A", "price_cents": 1, "capacity": 1},
                ],
            },
            "invalid_event",
        ),
        (
            {**base, "name": "", "sections": [{"name": "A", "price_cents": 1, "capacity": 1}]},
            "validation_error",
        ),
    ]
    for body, code in cases:
        _error(server.admin.post("/v1/events", json=body), 422, code)


def test_bad_paging_is_422(server, new_event) -> None:
    event_id = new_event()["id"]
    url = f"/v1/events/{event_id}/orders"
    assert server.admin.get(url, params={"limit": 0}).status_code == 422
    assert server.admin.get(url, params={"limit": 1001}).status_code == 422
    _error(server.admin.get(url, params={"cursor": "garbage!"}), 422, "invalid_cursor")
    bad_status = server.admin.get(f"/v1/events/{event_id}/purchases", params={"status": "maybe"})
    assert bad_status.status_code == 422


def test_invalid_idempotency_key_is_422(server, new_event) -> None:
    url = f"/v1/events/{new_event()['id']}/purchases"
    answer = server.client.post(url, json=GOOD, headers={"Idempotency-Key": "k" * 129})
    _error(answer, 422, "invalid_idempotency_key")
