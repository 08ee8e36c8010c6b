"""What `eventpro bench` compares workers with: the store's own ceiling, and how to read
rates from marks so that a stall of this shared machine moves neither side much."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from eventpro.bootstrap import bare_batched_writes


def median_window_rate(marks: list[tuple[float, int]]) -> float:
    """The median rate over consecutive windows, from (time, count so far) marks."""
    rates = [
        (n2 - n1) / (t2 - t1)
        for (t1, n1), (t2, n2) in itertools.pairwise(marks)
        if t2 > t1 and n2 > n1
    ]
    return round(statistics.median(rates), 1) if rates else 0.0


def rates(marks: list[tuple[float, int]], batch_size: int) -> dict[str, Any]:
    """The whole run's rate and the median of its windows, from (time, count) marks."""
    seconds = marks[-1][0] - marks[0][0]
    done = marks[-1][1]
    return {
        "decided": done,
        "seconds": round(seconds, 3),
        "rate": round(done / seconds, 1) if seconds else 0.0,
        "median_window_rate": median_window_rate(marks),
        "batch_size": batch_size,
    }


def store_ceiling(database_url: str, requests: int, batch_size: int) -> dict[str, Any]:
    """The store's bare batched conditional writes, as many requests as the workers did."""
    return rates(bare_batched_writes(database_url, requests, batch_size), batch_size)
