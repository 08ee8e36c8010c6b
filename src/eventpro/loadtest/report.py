"""The replay report: one table and four plots comparing strategies run on the same load.

Input is plain data (one `StrategyRun` per strategy, plus the machine's ceiling measured
in the same run); output is PNG files and one self-contained HTML page (the plots are
embedded, no script, no network), so the page can be opened anywhere or committed.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape

from eventpro.domain.model import NAIVE_PAUSE_S

if TYPE_CHECKING:
    from types import ModuleType

# (key in StrategyRun.series, title, y label)
PLOTS = (
    ("requests_per_s", "Requests answered per second", "requests/s"),
    ("errors_per_s", "Errors per second (5xx, timeouts, refused connections)", "errors/s"),
    ("remaining", "Tickets left in stock", "tickets"),
    ("p99_ms", "p99 latency of the first answer, per second", "ms"),
)
COLORS = {
    "naive": "#d62728",
    "locking": "#ff7f0e",
    "conditional": "#1f77b4",
    "queued": "#2ca02c",
}


@dataclass
class StrategyRun:
    """What one strategy did under the load: its row of the table and its time series."""

    strategy: str
    backend: str
    summary: dict[str, float | int | str]  # table columns, in display order
    broken: list[str] = field(default_factory=list)  # invariants the audit found broken
    series: dict[str, list[float]] = field(default_factory=dict)  # "t" (s) + PLOTS keys


@dataclass
class Ceiling:
    """The same machine's ceiling, measured in the same run: a bare endpoint, same load."""

    description: str
    requests_per_s: float


def share_of_ceiling(run: StrategyRun, ceiling: Ceiling) -> float:
    rate = float(run.summary.get("requests/s", 0.0))
    return rate / ceiling.requests_per_s if ceiling.requests_per_s else 0.0


def _pyplot() -> ModuleType:
    """matplotlib, loaded when a plot is drawn: importing it costs every `eventpro`
    process 56 MiB, the API servers included."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot

    return matplotlib.pyplot


def plot(runs: Sequence[StrategyRun], key: str, title: str, ylabel: str, path: Path) -> Path:
    """One line per strategy over the seconds of the run."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=110)
    for run in runs:
        t, values = run.series.get("t", []), run.series.get(key, [])
        points = [(x, y) for x, y in zip(t, values, strict=False) if not math.isnan(y)]
        if points:
            axes.plot(
                *zip(*points, strict=True),
                label=run.strategy,
                color=COLORS.get(run.strategy),
                linewidth=1.6,
            )
    axes.set_title(title)
    axes.set_xlabel("seconds since the sale opened")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_report(
    runs: Sequence[StrategyRun],
    ceiling: Ceiling,
    folder: Path,
    title: str,
    command: str,
) -> Path:
    """Write the PNG plots and `report.html` into `folder`; return the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for key, plot_title, ylabel in PLOTS:
        path = plot(runs, key, plot_title, ylabel, folder / f"{key}.png")
        encoded = base64.b64encode(path.read_bytes()).decode()
        images.append({"title": plot_title, "file": path.name, "data": encoded})
    columns = list(dict.fromkeys(k for run in runs for k in run.summary))
    environment = Environment(
        loader=PackageLoader("eventpro.loadtest", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    page = environment.get_template("report.html").render(
        title=title,
        command=command,
        naive_pause_ms=round(NAIVE_PAUSE_S * 1000),
        ceiling=ceiling,
        columns=columns,
        runs=[
            {
                "run": run,
                "cells": [_cell(run.summary.get(c, "")) for c in columns],
                "share": f"{share_of_ceiling(run, ceiling):.0%}",
            }
            for run in runs
        ],
        images=images,
    )
    target = folder / "report.html"
    target.write_text(page, encoding="utf-8")
    return target


def _cell(value: float | int | str) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value
