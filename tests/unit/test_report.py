"""The replay report writer: files, table, escaping, and the page in a real Chromium."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

from eventpro.loadtest.report import Ceiling, StrategyRun, write_report

CHROMIUM = os.environ.get("EVENTPRO_CHROMIUM", "/usr/bin/chromium")


def _runs() -> list[StrategyRun]:
    seconds = [float(t) for t in range(10)]
    runs = []
    for n, strategy in enumerate(("naive", "locking", "conditional", "queued")):
        runs.append(
            StrategyRun(
                strategy=strategy,
                backend="sqlite",
                summary={"oversold": 7 if strategy == "naive" else 0, "requests/s": 100.0 * n},
                broken=["capacity <script>"] if strategy == "naive" else [],
                series={
                    "t": seconds,
                    "requests_per_s": [10.0 * n + t for t in seconds],
                    "errors_per_s": [0.0] * 10,
                    "remaining": [max(0.0, 100 - 12 * t) for t in seconds],
                    "p99_ms": [math.nan, *([5.0 * (n + 1)] * 9)],
                },
            )
        )
    return runs


def test_report_writes_plots_and_a_self_contained_page(tmp_path: Path) -> None:
    page = write_report(_runs(), Ceiling("bare Starlette POST", 400.0), tmp_path, "T", "cmd")
    html = page.read_text()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "errors_per_s.png",
        "p99_ms.png",
        "remaining.png",
        "requests_per_s.png",
    ]
    assert html.count("data:image/png;base64,") == 4 and "http" not in html.lower()
    assert "capacity &lt;script&gt;" in html  # text from the data is escaped
    assert ">75%<" in html  # queued: 300 requests/s of a 400 requests/s ceiling


@pytest.mark.skipif(
    not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
    reason="no Chromium (apt install chromium)",
)
def test_report_page_opens_in_headless_chromium_without_errors(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_path = write_report(_runs(), Ceiling("bare", 400.0), tmp_path, "Replay", "cmd")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            assert page.locator("tbody tr").count() == 4
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 4 and all(w > 0 for w in widths)  # every plot decoded
        finally:
            browser.close()
    assert errors == []
