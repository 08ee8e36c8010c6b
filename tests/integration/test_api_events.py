"""Events over real HTTP: create, show, list with cursors, seat maps."""

from __future__ import annotations

from tests.integration.conftest import decided


def test_create_event_answers_201_with_inventory(server, new_event) -> None:
    event = new_event(sale_opens_at="2020-01-01T00:00:00Z")
    assert event["id"].startswith("evt_")
    assert event["status"] == "on_sale" and event["per_buyer_limit"] == 4
    assert event["sections"] == [
        {"name": "Floor", "kind": "general", "capacity": 5, "remaining": 5, "price_cents": 25000},
        {"name": "A", "kind": "reserved", "capacity": 3, "remaining": 3, "price_cents": 40000},
    ]
    assert event["queue"] == {"depth": 0}
    shown = server.client.get(f"/v1/events/{event['id']}")
    assert shown.status_code == 200 and shown.json()["sections"] == event["sections"]


def test_event_before_its_sale_is_scheduled_and_sold_out_when_empty(server, new_event) -> None:
    assert new_event(sale_opens_at="2099-01-01T00:00:00Z")["status"] == "scheduled"
    event = new_event(sections=[{"name": "Floor", "capacity": 1, "price_cents": 100}])
    bought = server.client.post(
        f"/v1/events/{event['id']}/purchases",
        json={"buyer_id": "solo", "section": "Floor", "quantity": 1},
    ).json()
    assert decided(server, bought["purchase_id"])["status"] == "confirmed"
    assert server.client.get(f"/v1/events/{event['id']}").json()["status"] == "sold_out"


def test_list_events_newest_first_with_cursor(server, new_event) -> None:
    made = [new_event()["id"] for _ in range(3)]
    first = server.client.get("/v1/events", params={"limit": 2}).json()
    assert [e["id"] for e in first["items"]] == made[::-1][:2]
    rest = server.client.get(
        "/v1/events", params={"limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert [e["id"] for e in rest["items"]] == [made[0]]


def test_seat_map_shows_sold_seats(server, new_event) -> None:
    event = new_event()
    bought = server.client.post(
        f"/v1/events/{event['id']}/purchases", json={"buyer_id": "s1", "seats": ["A2"]}
    ).json()
    decided(server, bought["purchase_id"])
    seats = server.client.get(f"/v1/events/{event['id']}/seats", params={"section": "A"})
    assert seats.status_code == 200
    assert [(s["label"], s["available"]) for s in seats.json()["items"]] == [
        ("A1", True),
        ("A2", False),
        ("A3", True),
    ]
    floor = server.client.get(f"/v1/events/{event['id']}/seats", params={"section": "Floor"})
    assert floor.status_code == 422 and floor.json()["error"]["field"] == "section"
