"""Purchases over real HTTP: admission, decisions, orders, idempotency, limits, listings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.conftest import decided


def _buy(server, event_id: str, **body: object) -> httpx.Response:
    return server.client.post(f"/v1/events/{event_id}/purchases", json=body)


def test_purchase_is_queued_with_a_position_then_confirmed_with_an_order(server, new_event) -> None:
    event = new_event()
    answer = _buy(server, event["id"], buyer_id="user_42", section="Floor", quantity=2)
    assert answer.status_code == 202
    accepted = answer.json()
    assert accepted["status"] in ("queued", "confirmed") and accepted["position"] == 1
    assert accepted["links"] == {"self": f"/v1/purchases/{accepted['purchase_id']}"}
    final = decided(server, accepted["purchase_id"])
    assert final["status"] == "confirmed" and final["ahead"] == 0 and final["reason"] is None
    order = final["order"]
    assert (order["section"], order["quantity"], order["amount_cents"]) == ("Floor", 2, 50000)
    shown = server.client.get(f"/v1/orders/{order['order_id']}").json()
    assert shown["purchase_id"] == accepted["purchase_id"] and shown["buyer_id"] == "user_42"
    assert shown["created_at"].endswith("Z")


def test_sold_out_is_decided_in_line_then_answered_at_once(server, new_event) -> None:
    event = new_event(sections=[{"name": "Floor", "capacity": 1, "price_cents": 100}])
    first = _buy(server, event["id"], buyer_id="a", section="Floor", quantity=1).json()
    second = _buy(server, event["id"], buyer_id="b", section="Floor", quantity=1).json()
    assert decided(server, first["purchase_id"])["status"] == "confirmed"
    late = decided(server, second["purchase_id"])
    assert (late["status"], late["reason"]) == ("rejected", "sold_out")
    fast = _buy(server, event["id"], buyer_id="c", section="Floor", quantity=1)
    assert fast.status_code == 202
    assert (fast.json()["status"], fast.json()["reason"], fast.json()["position"]) == (
        "rejected",
        "sold_out",
        None,
    )


def test_sale_not_open_is_rejected_at_once(server, new_event) -> None:
    event = new_event(sale_opens_at="2099-01-01T00:00:00Z")
    answer = _buy(server, event["id"], buyer_id="early", section="Floor", quantity=1).json()
    assert (answer["status"], answer["reason"], answer["position"]) == (
        "rejected",
        "sale_not_open",
        None,
    )


def test_limit_counts_requests_already_in_line(server, new_event) -> None:
    event = new_event(per_buyer_limit=3)
    first = _buy(server, event["id"], buyer_id="greedy", section="Floor", quantity=2).json()
    second = _buy(server, event["id"], buyer_id="greedy", section="Floor", quantity=2).json()
    assert first["position"] == 1
    assert (second["status"], second["reason"]) == ("rejected", "limit_exceeded")


def test_named_seats_are_all_or_nothing(server, new_event) -> None:
    event = new_event()
    first = _buy(server, event["id"], buyer_id="s1", seats=["A1", "A2"]).json()
    second = _buy(server, event["id"], buyer_id="s2", seats=["A2", "A3"]).json()
    assert decided(server, first["purchase_id"])["order"]["seats"] == ["A1", "A2"]
    lost = decided(server, second["purchase_id"])
    assert (lost["status"], lost["reason"], lost["order"]) == ("rejected", "seat_taken", None)
    remaining = server.client.get(f"/v1/events/{event['id']}").json()["sections"][1]["remaining"]
    assert remaining == 1


def test_idempotent_retry_returns_the_first_answer_and_buys_once(server, new_event) -> None:
    event = new_event()
    body = {"buyer_id": "retry", "section": "Floor", "quantity": 1}
    headers = {"Idempotency-Key": "order-7f1c"}
    url = f"/v1/events/{event['id']}/purchases"
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: server.client.post(url, json=body, headers=headers), range(8))
        )
    ids = {a.json()["purchase_id"] for a in answers if a.status_code == 202}
    assert len(ids) == 1
    assert {a.status_code for a in answers} <= {202, 409}
    conflicts = [a.json()["error"]["code"] for a in answers if a.status_code == 409]
    assert set(conflicts) <= {"idempotency_key_in_flight"}
    other = server.client.post(url, json={**body, "quantity": 2}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    decided(server, ids.pop())
    listed = server.admin.get(f"/v1/events/{event['id']}/purchases").json()["items"]
    assert len(listed) == 1


def test_admin_listings_page_by_position_and_filter_by_status(server, new_event) -> None:
    event = new_event(sections=[{"name": "Floor", "capacity": 2, "price_cents": 100}])
    ids = [
        _buy(server, event["id"], buyer_id=f"b{i}", section="Floor", quantity=1).json()[
            "purchase_id"
        ]
        for i in range(4)
    ]
    for purchase_id in ids:
        decided(server, purchase_id)
    url = f"/v1/events/{event['id']}/purchases"
    first = server.admin.get(url, params={"limit": 3}).json()
    rest = server.admin.get(url, params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [p["purchase_id"] for p in first["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None
    confirmed = server.admin.get(url, params={"status": "confirmed"}).json()["items"]
    assert [p["position"] for p in confirmed] == [1, 2]
    orders = server.admin.get(f"/v1/events/{event['id']}/orders").json()["items"]
    assert [o["purchase_id"] for o in orders] == ids[:2]
