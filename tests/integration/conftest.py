"""One real `eventpro serve` process per module, on a fresh SQLite file; fresh events per test."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, free_port, service_env, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder: Path = tmp_path_factory.mktemp("server")
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{folder / 'api.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
    )
    with ServerProcess(env, free_port(), workers=1, log=folder / "server.log") as running:
        yield running


EventFactory = Callable[..., dict[str, object]]


@pytest.fixture
def new_event(server: ServerProcess) -> EventFactory:
    def create(**overrides: object) -> dict[str, object]:
        body: dict[str, object] = {
            "name": f"Night {uuid.uuid4().hex[:6]}",
            "venue": "Stadium",
            "starts_at": "2030-12-12T19:00:00Z",
            "per_buyer_limit": 4,
            "sections": [
                {"name": "Floor", "capacity": 5, "price_cents": 25000},
                {"name": "A", "price_cents": 40000, "seats": ["A1", "A2", "A3"]},
            ],
            **overrides,
        }
        answer = server.admin.post("/v1/events", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    return create


def decided(server: ServerProcess, purchase_id: str, timeout: float = 10) -> dict[str, object]:
    """Poll a purchase until its status is final."""
    last: dict[str, object] = {}

    def final() -> bool:
        nonlocal last
        last = server.client.get(f"/v1/purchases/{purchase_id}").json()
        return last["status"] in ("confirmed", "rejected")

    wait_until(final, timeout)
    return last
