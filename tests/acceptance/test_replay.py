"""A short incident replay through the real CLI, on SQLite, PostgreSQL + Redis and MariaDB
+ Redis.

Every strategy runs the same few thousand buyers against its own server; the stored data
is audited. `naive` must be caught overselling; `locking`, `conditional` and `queued`
must sell exactly the stock; the report's files exist and its page opens in Chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import NEEDS_CHROMIUM, open_in_chromium, service_env

POSTGRES_URL = os.environ.get("EVENTPRO_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("EVENTPRO_TEST_REDIS_URL")
MYSQL_URL = os.environ.get("EVENTPRO_TEST_MYSQL_URL")
TICKETS = 300

pytestmark = pytest.mark.slow


@NEEDS_CHROMIUM
@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(
                not (POSTGRES_URL and REDIS_URL),
                reason="EVENTPRO_TEST_POSTGRES_URL and EVENTPRO_TEST_REDIS_URL are not set",
            ),
        ),
        pytest.param(
            "mariadb",
            marks=pytest.mark.skipif(
                not (MYSQL_URL and REDIS_URL),
                reason="EVENTPRO_TEST_MYSQL_URL and EVENTPRO_TEST_REDIS_URL are not set",
            ),
        ),
    ],
)
def test_a_short_replay_catches_naive_and_clears_the_others(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "report"
    env = service_env(
        EVENTPRO_REPLAY_POSTGRES_URL=POSTGRES_URL or "",
        EVENTPRO_REPLAY_REDIS_URL=REDIS_URL or "",
        EVENTPRO_REPLAY_MYSQL_URL=MYSQL_URL or "",
    )
    done = subprocess.run(
        [
            sys.executable, "-m", "eventpro", "replay", "--backend", backend,
            "--buyers", "2000", "--duration", "2", "--tickets", str(TICKETS),
            "--connections", "256", "--pool-size", "40", "--ceiling-seconds", "1",
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=300, env={**env, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {r["strategy"]: r for r in json.loads((out / "replay.json").read_text())["runs"]}
    assert list(runs) == ["naive", "locking", "conditional", "queued"]
    assert runs["naive"]["summary"]["oversold tickets"] > 0
    assert "1 never oversold, no seat twice" in runs["naive"]["broken"]
    for name in ("locking", "conditional", "queued"):
        summary = runs[name]["summary"]
        assert summary["oversold tickets"] == 0 and runs[name]["broken"] == [], (name, runs[name])
        assert summary["tickets sold"] == TICKETS, (name, summary)
        # sold out: none left while demand remained (it was read before the sale settled)
        assert summary["unsold while demand remained"] == 0, (name, summary)
    assert runs["queued"]["summary"]["5xx"] == 0
    for name in ("report.html", "requests_per_s.png", "errors_per_s.png", "remaining.png"):
        assert (out / name).stat().st_size > 0
    rows, widths, errors = open_in_chromium(out / "report.html")
    assert rows == 4 and len(widths) == 4 and all(w > 0 for w in widths)
    assert errors == []
    page = (out / "report.html").read_text()
    assert "20 ms later" in page  # naive's pause between its read and its write, disclosed
