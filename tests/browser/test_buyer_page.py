"""The buyer's page in a browser: buying, the waiting line, the outcome, no double buys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.browser.conftest import Watched, new_event, start_server
from tests.support import ServerProcess


def _buy_floor(page: Any, buyer: str, quantity: int = 2) -> None:
    page.get_by_label("Your buyer id").fill(buyer)
    page.get_by_label("Section", exact=True).select_option("Floor")
    page.get_by_label("Quantity", exact=True).fill(str(quantity))
    page.get_by_role("button", name="Buy").click()


def test_a_buyer_buys_general_admission_and_a_seat_pair(
    server: ServerProcess, open_page: Any
) -> None:
    event = new_event(server)
    watched: Watched = open_page()
    page = watched.page
    page.goto(f"{server.base_url}/events/{event['id']}")
    watched.check("buyer-page")
    _buy_floor(page, "ann")
    page.get_by_role("heading", name="Confirmed").wait_for(timeout=10_000)
    assert "2 \u00d7 Floor" in page.locator("#outcome").inner_text()
    watched.check("buyer-confirmed")

    page.get_by_role("button", name="Buy again").click()
    page.get_by_role("button", name="A2, free").click()
    page.get_by_role("button", name="A3, free").click()
    page.get_by_role("button", name="Buy").click()
    page.get_by_role("heading", name="Confirmed").wait_for(timeout=10_000)
    assert "seats A2, A3" in page.locator("#outcome").inner_text()
    page.get_by_role("button", name="A2, sold").wait_for(timeout=10_000)  # the map is live
    orders = server.admin.get(f"/v1/events/{event['id']}/orders").json()["items"]
    assert sorted(o["quantity"] for o in orders) == [2, 2]


def test_a_buyer_in_a_sold_out_sale_sees_why(server: ServerProcess, open_page: Any) -> None:
    event = new_event(server, sections=[{"name": "Floor", "capacity": 1, "price_cents": 100}])
    sold = server.client.post(
        f"/v1/events/{event['id']}/purchases",
        json={"buyer_id": "first", "section": "Floor", "quantity": 1},
    )
    assert sold.status_code == 202
    watched: Watched = open_page(width=390, height=844)  # a phone
    page = watched.page
    page.goto(f"{server.base_url}/events/{event['id']}")
    page.locator("[data-remaining='Floor']").filter(has_text="0").wait_for(timeout=10_000)
    _buy_floor(page, "late", 1)
    page.get_by_role("heading", name="Not bought").wait_for(timeout=10_000)
    assert "Sold out" in page.locator("#outcome").inner_text()
    watched.check("buyer-sold-out-phone")


def test_a_double_click_buys_once(server: ServerProcess, open_page: Any) -> None:
    event = new_event(server)
    watched: Watched = open_page()
    page = watched.page
    page.goto(f"{server.base_url}/events/{event['id']}")
    page.get_by_label("Your buyer id").fill("double")
    page.get_by_role("button", name="Buy").dblclick()
    page.get_by_role("heading", name="Confirmed").wait_for(timeout=10_000)
    listed = server.admin.get(f"/v1/events/{event['id']}/purchases").json()["items"]
    assert [p["buyer_id"] for p in listed] == ["double"]
    assert not watched.console_errors


def test_a_reload_mid_wait_resumes_the_same_purchase(tmp_path: Path, open_page: Any) -> None:
    # Given a server with no worker loops: a purchase waits in line until a worker starts
    with start_server(tmp_path, workers=0) as idle:
        event = new_event(idle)
        watched: Watched = open_page()
        page = watched.page
        page.goto(f"{idle.base_url}/events/{event['id']}")
        _buy_floor(page, "patient", 1)
        page.get_by_text("You are number 1 in line").wait_for(timeout=10_000)

        watched.check("buyer-in-line")

        # When the buyer reloads mid-wait
        page.reload()
        page.get_by_text("You are number 1 in line").wait_for(timeout=10_000)

        # Then the page follows the same purchase, and a worker's decision reaches it
        worker = subprocess.Popen(
            [sys.executable, "-m", "eventpro", "worker"],
            env=idle.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            page.get_by_role("heading", name="Confirmed").wait_for(timeout=20_000)
        finally:
            worker.terminate()
            worker.wait(10)

        listed = idle.admin.get(f"/v1/events/{event['id']}/purchases").json()["items"]
        assert [p["buyer_id"] for p in listed] == ["patient"]
        assert not watched.console_errors
