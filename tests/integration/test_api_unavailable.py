"""When the store cannot be written, buyers get 503 with Retry-After, never a 500."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from tests.support import ServerProcess, free_port, service_env


def test_a_locked_database_answers_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{db}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        EVENTPRO_RETRY_AFTER="2",
    )
    with ServerProcess(env, free_port(), workers=0) as server:
        event = server.admin.post(
            "/v1/events",
            json={
                "name": "Locked",
                "venue": "Vault",
                "starts_at": "2030-01-01T20:00:00Z",
                "sections": [{"name": "Floor", "capacity": 5, "price_cents": 100}],
            },
        ).json()
        url = f"/v1/events/{event['id']}/purchases"
        body = {"buyer_id": "patient", "section": "Floor", "quantity": 1}
        # Another process holds the file's write lock longer than the busy timeout.
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            refused = server.client.post(url, json=body)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "2"
        error = refused.json()["error"]
        assert error["code"] == "backend_unavailable"
        # the cause (here "database is locked", elsewhere host names and ports) is logged,
        # never told to a caller
        assert "sqlite" not in error["message"] and "locked" not in error["message"]
        retried = server.client.post(url, json=body)
        assert retried.status_code == 202 and retried.json()["position"] == 1
