"""Server-Sent Events over real HTTP: a purchase's progress and an event's stock."""

from __future__ import annotations

import orjson


def _events(lines: list[str]) -> list[dict[str, object]]:
    return [orjson.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


def test_purchase_stream_sends_updates_and_closes_after_the_final_status(server, new_event) -> None:
    event = new_event()
    bought = server.client.post(
        f"/v1/events/{event['id']}/purchases",
        json={"buyer_id": "watcher", "section": "Floor", "quantity": 1},
    ).json()
    url = f"/v1/purchases/{bought['purchase_id']}/stream"
    with server.client.stream("GET", url, headers={"Last-Event-ID": "41"}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = list(answer.iter_lines())  # ends because the server closes the stream
    updates = _events(lines)
    assert updates[-1]["status"] == "confirmed" and updates[-1]["order"]["quantity"] == 1
    assert all(u["purchase_id"] == bought["purchase_id"] for u in updates)
    ids = [int(line[4:]) for line in lines if line.startswith("id: ")]
    assert ids[0] == 42 and ids == sorted(ids)


def test_event_stream_sends_the_event_and_closes_when_sold_out(server, new_event) -> None:
    event = new_event(sections=[{"name": "Floor", "capacity": 1, "price_cents": 100}])
    server.client.post(
        f"/v1/events/{event['id']}/purchases",
        json={"buyer_id": "last", "section": "Floor", "quantity": 1},
    )
    with server.client.stream("GET", f"/v1/events/{event['id']}/stream") as answer:
        assert answer.status_code == 200
        lines = list(answer.iter_lines())
    updates = _events(lines)
    assert updates[-1]["status"] == "sold_out" and updates[-1]["queue"] == {"depth": 0}
