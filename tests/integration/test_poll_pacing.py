"""A queued purchase tells pollers when to ask again; a final one does not."""

from __future__ import annotations

import secrets
from pathlib import Path

from eventpro.api.routes.purchases import MAX_POLL_AFTER, POLL_RATE, poll_after
from tests.support import ServerProcess, create_event, floor, free_port, service_env


def test_poll_after_grows_with_the_line_and_is_capped() -> None:
    assert [poll_after(n) for n in (0, POLL_RATE - 1, POLL_RATE, 3 * POLL_RATE)] == [1, 1, 2, 4]
    assert poll_after(10**9) == MAX_POLL_AFTER


def test_a_queued_answer_carries_retry_after(tmp_path: Path) -> None:
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{tmp_path / 'pace.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
    )
    with ServerProcess(env, free_port(), workers=0) as server:  # nothing gets decided
        event_id = create_event(server, "Paced", floor(10))
        late_id = create_event(server, "Later", floor(10), sale_opens_at="2029-12-01T00:00:00Z")
        body = {"buyer_id": "ann", "section": "Floor", "quantity": 1}
        queued = server.client.post(f"/v1/events/{event_id}/purchases", json=body).json()
        early = server.client.post(f"/v1/events/{late_id}/purchases", json=body).json()
        waiting = server.client.get(f"/v1/purchases/{queued['purchase_id']}")
        final = server.client.get(f"/v1/purchases/{early['purchase_id']}")
    assert waiting.json()["status"] == "queued" and waiting.headers["Retry-After"] == "1"
    assert final.json()["status"] == "rejected" and "Retry-After" not in final.headers
