"""Prometheus metrics of one API process, in a registry of its own."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from eventpro.api.protocol import REFUSED
from eventpro.services.decisions import BatchResult
from eventpro.services.events import EventView

# The limits that refuse requests before they reach a route (see protocol.py, limits.py).
LIMITS = ("head_too_large", "too_many_headers", "head_timeout", "body_too_large")
ADMISSION_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestTallies(Collector):
    """What every request counts: requests by route and status, admissions by status and
    their latency. They are counted on the event loop, the only thread that counts them,
    as plain integers, and turned into Prometheus families when `/metrics` is read.
    (prometheus_client's own metrics take a lock per update and per label lookup: a
    tenth of the purchase POST's time on the loop.)"""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.admissions: dict[str, int] = {}
        self.latency_counts = [0] * (len(ADMISSION_SECONDS) + 1)  # the last: above all
        self.latency_sum = 0.0

    def observe_admission(self, seconds: float) -> None:
        self.latency_counts[bisect.bisect_left(ADMISSION_SECONDS, seconds)] += 1
        self.latency_sum += seconds

    def latency_buckets(self) -> list[tuple[float, float]]:
        """(upper bound in seconds, cumulative count), `+Inf` last."""
        bounds = [*ADMISSION_SECONDS, float("inf")]
        totals = accumulate(list(self.latency_counts))  # a copy: the loop may count meanwhile
        return [(bound, float(total)) for bound, total in zip(bounds, totals, strict=True)]

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "eventpro_http_requests",
            "HTTP requests by route and status",
            labels=["route", "status"],
        )
        for (route, code), count in dict(self.requests).items():
            requests.add_metric([route, str(code)], count)
        admissions = CounterMetricFamily(
            "eventpro_admissions",
            "purchase requests answered 202, by status at admission",
            labels=["status"],
        )
        for status, count in dict(self.admissions).items():
            admissions.add_metric([status], count)
        buckets = self.latency_buckets()
        latency = HistogramMetricFamily(
            "eventpro_admission_seconds", "time to answer a purchase request"
        )
        latency.add_metric(
            [],
            [(("+Inf" if b == float("inf") else repr(b)), c) for b, c in buckets],
            self.latency_sum,
        )
        yield from (requests, admissions, latency)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tallies = RequestTallies()
        self.registry.register(self.tallies)
        self.queue_depth = Gauge(
            "eventpro_queue_depth",
            "undecided requests of an event, as last read by this process",
            ["event_id"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "eventpro_decisions_total",
            "requests decided by this process's workers, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "eventpro_dead_letters_total",
            "requests this process's workers moved to the dead-letter queue",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "eventpro_batch_size",
            "requests leased per batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 5000),
            registry=self.registry,
        )

        refused = Gauge(
            "eventpro_refused_total",
            "requests or connections refused by a limit of the server, by reason",
            ["reason"],
            registry=self.registry,
        )
        for reason in LIMITS:
            refused.labels(reason).set_function(lambda r=reason: REFUSED[r])  # type: ignore[misc]
        self.streams_open = Gauge(
            "eventpro_streams_open", "live streams open in this process", registry=self.registry
        )
        self.streams_refused = Counter(
            "eventpro_streams_refused_total",
            "live streams refused with 429: too many open in the process or from one client",
            registry=self.registry,
        )

    def count_request(self, route: str, status: int) -> None:
        requests = self.tallies.requests
        requests[route, status] = requests.get((route, status), 0) + 1

    def count_admission(self, status: str, seconds: float) -> None:
        admissions = self.tallies.admissions
        admissions[status] = admissions.get(status, 0) + 1
        self.tallies.observe_admission(seconds)

    def on_view(self, view: EventView) -> None:
        self.queue_depth.labels(view.event.id).set(view.queue_depth)

    def watch_pool(self, counts: Callable[[], dict[str, int]]) -> None:
        """Export a synchronous strategy's connection-pool waits (the incident's symptom)."""
        for name, help_text in (
            ("waited", "requests of a synchronous strategy that waited for a connection"),
            ("timed_out", "requests of a synchronous strategy that gave up waiting (500/503)"),
        ):
            gauge = Gauge(f"eventpro_pool_{name}", help_text, registry=self.registry)
            gauge.set_function(lambda name=name: counts().get(name, 0))  # type: ignore[misc]

    def on_batch(self, result: BatchResult) -> None:
        self.batch_size.observe(result.leased)
        self.decisions.labels("confirmed").inc(result.confirmed)
        self.decisions.labels("rejected").inc(result.decided - result.confirmed)
        self.dead_letters.inc(result.dead_lettered)

    def admission_buckets(self) -> list[tuple[float, float]]:
        """The admission latency histogram as (upper bound in seconds, cumulative count)."""
        return self.tallies.latency_buckets()
