"""The operator's dashboard in a browser: login, a running sale's counts, pause, redrive,
creating an event; and its refusals over plain HTTP (401, 403, 404)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Watched, log_in, new_event, start_server
from tests.support import ServerProcess, wait_until


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose worker dead-letters a request at its first failure."""
    with start_server(tmp_path_factory.mktemp("fragile"), EVENTPRO_MAX_ATTEMPTS="1") as running:
        yield running


def _sell(server: ServerProcess, event_id: str, buyers: int) -> None:
    for n in range(buyers):
        answer = server.client.post(
            f"/v1/events/{event_id}/purchases",
            json={"buyer_id": f"fan{n}", "section": "Floor", "quantity": 3},
        )
        assert answer.status_code == 202, answer.text


def _api_counts(server: ServerProcess, event_id: str) -> Counter[str]:
    listed = server.admin.get(f"/v1/events/{event_id}/purchases", params={"limit": 1000})
    return Counter(p["status"] for p in listed.json()["items"])


def test_the_dashboard_shows_a_running_sales_counts_as_the_api_does(
    server: ServerProcess, open_page: Any
) -> None:
    event = new_event(server, sections=[{"name": "Floor", "capacity": 30, "price_cents": 900}])
    watched: Watched = open_page()
    page = watched.page
    log_in(page, server)
    page.get_by_role("link", name=event["name"]).first.click()
    _sell(server, event["id"], 15)  # 10 confirmed, 5 sold out
    wait_until(lambda: _api_counts(server, event["id"])["queued"] == 0, timeout=20)
    api = server.client.get(f"/v1/events/{event['id']}").json()
    page.locator("[data-remaining='Floor']").filter(has_text="0").wait_for(timeout=10_000)
    counts = _api_counts(server, event["id"])
    for status in ("confirmed", "rejected", "queued", "failed"):
        cell = page.locator(f"[data-count='{status}']")
        cell.filter(has_text=str(counts[status])).wait_for(timeout=10_000)
    assert page.locator("[data-depth]").inner_text() == str(api["queue"]["depth"])
    page.locator("#chart-confirmed polyline[points*=',']").wait_for(timeout=10_000)
    watched.check("dashboard-sale")


def test_pause_stops_admission_and_resume_restarts_it(
    server: ServerProcess, open_page: Any
) -> None:
    event = new_event(server)
    watched: Watched = open_page()
    page = watched.page
    log_in(page, server)
    page.goto(f"{server.base_url}/admin/events/{event['id']}")
    page.get_by_role("button", name="Pause admission").click()
    page.get_by_role("button", name="Resume admission").wait_for()
    buy = f"/v1/events/{event['id']}/purchases"
    body = {"buyer_id": "eager", "section": "Floor", "quantity": 1}
    refused = server.client.post(buy, json=body)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    watched.check("dashboard-paused")
    page.get_by_role("button", name="Resume admission").click()
    page.get_by_role("button", name="Pause admission").wait_for()
    assert server.client.post(buy, json=body).status_code == 202


def test_redrive_from_its_button_decides_the_dead_letters(
    fragile: ServerProcess, open_page: Any
) -> None:
    event = new_event(fragile)
    database = Path(fragile.env["EVENTPRO_DATABASE_URL"].removeprefix("sqlite:///"))
    _set_seats(database, event["id"], "ord_ghost")  # the fault: the seats say sold out
    buy = fragile.client.post(
        f"/v1/events/{event['id']}/purchases",
        json={"buyer_id": "poisoned", "section": "A", "quantity": 1},
    )
    purchase = buy.json()["links"]["self"]
    wait_until(lambda: fragile.client.get(purchase).json()["status"] == "failed", timeout=20)
    _set_seats(database, event["id"], None)  # the operator repairs the data
    watched: Watched = open_page()
    page = watched.page
    log_in(page, fragile)
    page.goto(f"{fragile.base_url}/admin/events/{event['id']}")
    watched.check("dashboard-dead-letters")
    page.get_by_role("button", name="Redrive 1 dead letters").click()
    page.get_by_text("1 dead letters put back in line").wait_for()
    wait_until(lambda: fragile.client.get(purchase).json()["status"] == "confirmed", timeout=20)


def _set_seats(database: Path, event_id: str, order_id: str | None) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE seats SET order_id = ? WHERE event_id = ?", (order_id, event_id))


def test_the_event_form_shows_errors_beside_fields_and_creates_the_event(
    server: ServerProcess, open_page: Any
) -> None:
    watched: Watched = open_page(width=390, height=844)
    page = watched.page
    log_in(page, server)
    page.get_by_label("Venue").fill("Arena")
    page.get_by_label("Starts at (UTC)").fill("2030-05-01T20:00")
    page.get_by_label("Sections").fill("Floor; 1000; 0")
    page.get_by_role("button", name="Create").click()
    assert page.locator("#f-name-error").inner_text()  # the name is missing
    page.get_by_label("Name").fill("Form night")
    page.get_by_role("button", name="Create").click()
    assert "capacity" in page.locator("#f-sections-error").inner_text()
    # The two refused forms came back as 422 pages, which Chromium logs as console errors.
    assert all("422" in error for error in watched.console_errors)
    watched.console_errors.clear()
    watched.check("dashboard-form-errors")
    page.get_by_label("Sections").fill("Floor; 1000; 20\nA; 2000; A1 A2")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="Form night").wait_for()
    event_id = page.url.rsplit("/", 1)[1]
    shown = server.client.get(f"/v1/events/{event_id}").json()
    assert [s["capacity"] for s in shown["sections"]] == [20, 2]


def test_pages_refuse_bad_tokens_missing_csrf_and_unknown_ids(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        refused = browser.post("/admin/login", data={"token": "not-the-token"})
        assert refused.status_code == 401 and 'name="token"' in refused.text
        assert "eventpro_session" not in refused.headers.get("set-cookie", "")
        assert browser.get("/admin/events/evt_x/stats").json()["error"]["code"] == "unauthorized"
        assert browser.get("/admin/events/evt_x").status_code == 401
        token = server.env["EVENTPRO_ADMIN_TOKEN"]
        logged_in = browser.post("/admin/login", data={"token": token})
        assert logged_in.status_code == 303
        cookie = logged_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and token not in cookie
        event = new_event(server)
        for path in ("pause", "resume", "redrive"):
            for form in ({}, {"csrf": "forged"}):
                answer = browser.post(f"/admin/events/{event['id']}/{path}", data=form)
                assert answer.status_code == 403, path
                assert answer.json()["error"]["code"] == "csrf_failed"
        assert not server.client.get(f"/v1/events/{event['id']}").json()["paused"]
        assert browser.get("/admin/events/evt_nope").status_code == 404
        assert browser.get("/events/evt_nope").status_code == 404
        assert browser.get("/admin/events/evt_nope/stats").status_code == 404
    paths = server.client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/admin", "/events", "/static"))]
