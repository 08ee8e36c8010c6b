"""The replay report writer: files, table, escaping, and the page in a real Chromium."""

from __future__ import annotations

import math
from pathlib import Path

from eventpro.loadtest.report import Ceiling, StrategyRun, write_report
from tests.support import NEEDS_CHROMIUM, open_in_chromium


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


@NEEDS_CHROMIUM
def test_report_page_opens_in_headless_chromium_without_errors(tmp_path: Path) -> None:
    page_path = write_report(_runs(), Ceiling("bare", 400.0), tmp_path, "Replay", "cmd")
    rows, widths, errors = open_in_chromium(page_path)
    assert rows == 4
    assert len(widths) == 4 and all(w > 0 for w in widths)  # every plot decoded
    assert errors == []
