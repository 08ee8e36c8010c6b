"""What a load run recorded, and what it means: every attempt of every request, the
counters, the summary, the per-second series. `run.py` plays the buyers; this reads them."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eventpro.loadtest.client import percentile
from eventpro.loadtest.http import CONNECTION_ERROR, TIMEOUT
from eventpro.loadtest.scenario import Scenario

FINAL = ("confirmed", "rejected")


@dataclass(slots=True)
class Attempt:
    sent_s: float  # seconds since the start of the run
    latency_s: float
    status: int  # HTTP status, or TIMEOUT / CONNECTION_ERROR


@dataclass(slots=True)
class RequestRecord:
    """One buyer request from its first send to its final outcome."""

    buyer: int
    request: int
    duplicate: bool
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = "undecided"  # confirmed, rejected:<reason>, error, timeout, queued
    decided_s: float = math.nan  # seconds since the start when the outcome was known
    purchase_id: str | None = None
    tickets: int = 0

    @property
    def first_sent_s(self) -> float:
        return self.attempts[0].sent_s if self.attempts else math.nan


@dataclass
class Counters:
    """Progress shared with a live progress bar (plain ints: one event loop writes them)."""

    sent: int = 0
    answered: int = 0
    decided: int = 0


@dataclass
class LoadResult:
    scenario: Scenario
    records: list[RequestRecord]
    remaining: list[tuple[float, float]]  # (s since start, tickets left) sampled each second
    wall_s: float
    cpu_s: list[float]  # CPU seconds of each client process

    def acknowledged(self) -> set[str]:
        """The purchase ids the server answered `202` for: each is a promise to keep."""
        return {
            r.purchase_id
            for r in self.records
            if r.purchase_id and any(a.status == 202 for a in r.attempts)
        }

    def summary(self) -> dict[str, Any]:
        """Counts, latencies and rates of the whole run."""
        attempts = [a for r in self.records for a in r.attempts]
        statuses = Counter(a.status for a in attempts)
        # a duplicate submission shares its original's purchase: count each purchase once
        outcomes = Counter(r.outcome for r in self._distinct())
        first = [r.attempts[0].latency_s * 1000 for r in self.records if r.attempts]
        decision = [
            (r.decided_s - r.first_sent_s) * 1000
            for r in self.records
            if r.outcome.startswith(FINAL) and r.attempts
        ]
        sent_times = [a.sent_s for a in attempts]
        span = (max(sent_times) - min(sent_times)) if len(sent_times) > 1 else 0.0
        answered = sum(n for s, n in statuses.items() if s > 0)
        ends = [a.sent_s + a.latency_s for a in attempts]
        answer_span = (max(ends) - min(sent_times)) if attempts else 0.0
        return {
            "buyers": self.scenario.buyers,
            "requests": len(self.records),
            "attempts": len(attempts),
            "answered": answered,
            **{f"http_{s}": n for s, n in sorted(statuses.items()) if s > 0},
            "4xx": sum(n for s, n in statuses.items() if 400 <= s < 500),
            "5xx": sum(n for s, n in statuses.items() if s >= 500),
            "timeouts": statuses[TIMEOUT],
            "connection_errors": statuses[CONNECTION_ERROR],
            "confirmed": outcomes["confirmed"],
            "rejected": sum(n for o, n in outcomes.items() if o.startswith("rejected")),
            **{o.replace(":", "_"): n for o, n in outcomes.items() if o.startswith("rejected:")},
            "errors": outcomes["error"] + outcomes["timeout"],
            "undecided": outcomes["undecided"] + outcomes["queued"],
            "tickets_confirmed": sum(r.tickets for r in self._distinct()),
            "duplicates_sent": sum(r.duplicate for r in self.records),
            "p50_first_answer_ms": percentile(first, 0.5),
            "p99_first_answer_ms": percentile(first, 0.99),
            "p50_decision_ms": percentile(decision, 0.5),
            "p99_decision_ms": percentile(decision, 0.99),
            "sold_out_after_s": self._sold_out_after(),
            "offered_per_s": len(attempts) / span if span else float(len(attempts)),
            "answered_per_s": answered / answer_span if answer_span else 0.0,
            "wall_s": self.wall_s,
            "client_processes": len(self.cpu_s),
            "client_cpu_s": sum(self.cpu_s),
            "client_cpu_share": sum(self.cpu_s) / self.wall_s if self.wall_s else 0.0,
        }

    def _distinct(self) -> list[RequestRecord]:
        """One record per purchase: duplicates of a purchase already counted are left out."""
        seen: set[str] = set()
        distinct = []
        for record in self.records:
            if record.purchase_id is not None:
                if record.purchase_id in seen:
                    continue
                seen.add(record.purchase_id)
            distinct.append(record)
        return distinct

    def _sold_out_after(self) -> float:
        """Seconds until the first `sold_out` answer, or until no ticket remained."""
        refused = [r.decided_s for r in self.records if r.outcome == "rejected:sold_out"]
        empty = [t for t, left in self.remaining if left == 0]
        known = refused + empty
        return min(known) if known else math.nan

    def series(self) -> dict[str, list[float]]:
        """Per second of the run: answers, errors, p99 latency of answers, tickets left."""
        answered: defaultdict[int, int] = defaultdict(int)
        errors: defaultdict[int, int] = defaultdict(int)
        latencies: defaultdict[int, list[float]] = defaultdict(list)
        for record in self.records:
            for a in record.attempts:
                second = int(a.sent_s + a.latency_s)
                if a.status > 0:
                    answered[second] += 1
                    latencies[second].append(a.latency_s * 1000)
                if a.status >= 500 or a.status <= 0:
                    errors[second] += 1
        left = {int(t): value for t, value in self.remaining}
        last = max([*answered, *errors, *left, 0])
        seconds = range(last + 1)
        return {
            "t": [float(s) for s in seconds],
            "requests_per_s": [float(answered[s]) for s in seconds],
            "errors_per_s": [float(errors[s]) for s in seconds],
            "p99_ms": [
                percentile(latencies[s], 0.99) if latencies[s] else math.nan for s in seconds
            ],
            "remaining": [left.get(s, math.nan) for s in seconds],
        }

    def first_sends(self) -> list[tuple[float, str]]:
        """(first send, outcome) of every request: what the FCFS check from the client needs."""
        return [(r.first_sent_s, r.outcome) for r in self.records if r.attempts]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.model_dump(),
            "summary": self.summary(),
            "series": self.series(),
            "client_cpu_s": self.cpu_s,
            "requests": [
                {**asdict(r), "attempts": [asdict(a) for a in r.attempts]} for r in self.records
            ],
        }


def outcomes(records: Sequence[RequestRecord]) -> Counter[str]:
    return Counter(r.outcome for r in records)
