"""Operations over real HTTP: pause and resume, dead letters, health, metrics, OpenAPI."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.conftest import decided

CONTRACT = Path(__file__).parents[2] / "docs" / "http-api.md"


def test_pause_answers_429_with_retry_after_and_resume_admits_again(server, new_event) -> None:
    event = new_event()
    url = f"/v1/events/{event['id']}/purchases"
    body = {"buyer_id": "p1", "section": "Floor", "quantity": 1}
    paused = server.admin.post(f"/v1/admin/events/{event['id']}/pause")
    assert paused.status_code == 200 and paused.json()["id"] == event["id"]
    refused = server.client.post(url, json=body)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "event_paused"
    assert server.admin.post(f"/v1/admin/events/{event['id']}/resume").status_code == 200
    admitted = server.client.post(url, json=body)
    assert admitted.status_code == 202 and admitted.json()["position"] == 1
    assert server.admin.post("/v1/admin/events/evt_nope/pause").status_code == 404


def test_dead_letter_listing_and_redrive_shapes(server, new_event) -> None:
    event = new_event()
    listed = server.admin.get("/v1/admin/dead-letters", params={"event_id": event["id"]})
    assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}
    redriven = server.admin.post("/v1/admin/dead-letters/redrive", json={"event_id": event["id"]})
    assert redriven.status_code == 200 and redriven.json() == {"redriven": 0}
    by_ids = server.admin.post("/v1/admin/dead-letters/redrive", json={"purchase_ids": ["pur_x"]})
    assert by_ids.json() == {"redriven": 0}
    both = server.admin.post(
        "/v1/admin/dead-letters/redrive", json={"event_id": event["id"], "purchase_ids": ["p"]}
    )
    assert both.status_code == 422


def test_health_readiness_and_metrics(server, new_event) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["backends"] == {"database": "ok", "queue": "ok"}
    event = new_event()
    bought = server.client.post(
        f"/v1/events/{event['id']}/purchases",
        json={"buyer_id": "m1", "section": "Floor", "quantity": 1},
    ).json()
    decided(server, bought["purchase_id"])
    text = server.client.get("/metrics").text
    for name in (
        "eventpro_http_requests_total",
        "eventpro_admission_seconds_bucket",
        "eventpro_admissions_total",
        "eventpro_decisions_total",
        "eventpro_dead_letters_total",
        "eventpro_batch_size_bucket",
    ):
        assert name in text, name
    assert 'route="/v1/events/{event_id}/purchases",status="202"' in text
    confirmed = re.search(r'eventpro_decisions_total\{outcome="confirmed"\} ([0-9.]+)', text)
    assert confirmed is not None and float(confirmed.group(1)) >= 1
    server.client.get(f"/v1/events/{event['id']}")  # a view of the event sets its depth
    text = server.client.get("/metrics").text
    assert f'eventpro_queue_depth{{event_id="{event["id"]}"}} 0.0' in text


def test_openapi_documents_every_path_of_the_contract(server) -> None:
    documented = server.client.get("/openapi.json").json()["paths"]
    contract = set(re.findall(r"`(?:GET|POST) (/[^`?\s]+)", CONTRACT.read_text()))
    # The contract writes the resume path as "…/resume", next to the pause path.
    contract.add("/v1/admin/events/{event_id}/resume")
    assert contract, "no paths found in the contract"
    missing = sorted(p for p in contract if p not in documented)
    assert not missing, f"paths of docs/http-api.md missing from /openapi.json: {missing}"
    purchase = documented["/v1/events/{event_id}/purchases"]["post"]
    assert {"202", "400", "404", "409", "413", "422", "429", "503"} <= set(purchase["responses"])
    assert "requestBody" in purchase
