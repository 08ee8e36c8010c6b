"""`eventpro bench --backend aws --quick` through the real CLI: the bench starts its own
emulator, sells 100 tickets to 1,000 buyers on fresh tables, counts every AWS call, and
compares each rate with the emulator's own for the same calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import service_env

pytestmark = [pytest.mark.slow, pytest.mark.dynamodb]


def test_bench_aws_counts_the_calls_of_a_sale_and_sells_exactly_the_stock(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eventpro", "bench", "--backend", "aws", "--quick",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, env={**service_env(), "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "aws.json").read_text())
    buyers, tickets = results["buyers"], results["tickets"]
    assert (buyers, tickets) == (1000, 100)
    # every buyer answered 202, every request decided, exactly the stock sold
    assert results["admission"]["requests"] == buyers and results["admission"]["errors"] == 0
    assert results["decisions"]["decided"] == buyers
    assert results["decisions"]["confirmed"] == tickets
    assert results["statuses_after_decisions"] == {
        "confirmed": tickets,
        "rejected": buyers - tickets,
    }
    per = results["calls_per_purchase"]
    assert 0 < per["sale"]["all"] <= 2.0, per
    assert per["sale"]["TransactWriteItems"] > 0 and per["sale"]["UpdateItem"] > 0
    assert per["poll"]["GetItem"] >= 1
    assert results["bare"]["admission"]["rate"] > 0 and results["bare"]["decisions"]["rate"] > 0
    assert all(mib > 0 for mib in results["peak_rss_mib"].values())
    assert results["cost"]["slow_workers"]["usd"] > results["cost"]["fast_workers"]["usd"] > 0
    assert "AWS calls per purchase" in done.stdout
