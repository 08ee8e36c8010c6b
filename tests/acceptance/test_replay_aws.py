"""The incident replay on the AWS tier through the real CLI: `eventpro replay --backend
aws` starts its own emulator and runs the strategies that apply there (the queued one;
the synchronous three are SQL designs and are left out, saying so). The stored sale is
audited with every purchase a buyer was answered 202 for: the queued run must sell
exactly the stock and keep every 202."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import service_env

TICKETS = 100

pytestmark = [pytest.mark.slow, pytest.mark.dynamodb]


def test_a_short_replay_on_aws_sells_exactly_the_stock_and_keeps_every_202(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable, "-m", "eventpro", "replay", "--backend", "aws",
            "--buyers", "600", "--duration", "2", "--tickets", str(TICKETS),
            "--connections", "64", "--ceiling-seconds", "1", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=300, env={**service_env(), "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "naive, locking, conditional left out" in done.stdout
    runs = {r["strategy"]: r for r in json.loads((out / "replay.json").read_text())["runs"]}
    assert list(runs) == ["queued"]
    queued = runs["queued"]
    summary = queued["summary"]
    # the audit read the stored sale: never oversold, every 202 decided once, FCFS, ...
    assert queued["broken"] == [], queued
    assert summary["oversold tickets"] == 0 and summary["tickets sold"] == TICKETS, summary
    assert summary["unsold while demand remained"] == 0, summary
    assert summary["5xx"] == 0, summary
    assert (out / "report.html").stat().st_size > 0
