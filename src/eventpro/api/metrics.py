"""Prometheus metrics of one API process, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from eventpro.api.protocol import REFUSED
from eventpro.services.decisions import BatchResult
from eventpro.services.events import EventView

# The limits that refuse requests before they reach a route (see protocol.py, limits.py).
LIMITS = ("head_too_large", "too_many_headers", "head_timeout", "body_too_large")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "eventpro_http_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.admission_latency = Histogram(
            "eventpro_admission_seconds",
            "time to answer a purchase request",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.admissions = Counter(
            "eventpro_admissions_total",
            "purchase requests answered 202, by status at admission",
            ["status"],
            registry=self.registry,
        )
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

        # Labelled children, cached: `labels()` takes a lock and builds a key every call.
        self._request_counters: dict[tuple[str, int], Counter] = {}
        self._admission_counters: dict[str, Counter] = {}

    def count_request(self, route: str, status: int) -> None:
        key = (route, status)
        child = self._request_counters.get(key)
        if child is None:
            child = self._request_counters[key] = self.requests.labels(route, str(status))
        child.inc()

    def count_admission(self, status: str) -> None:
        child = self._admission_counters.get(status)
        if child is None:
            child = self._admission_counters[status] = self.admissions.labels(status)
        child.inc()

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
        return [
            (float(sample.labels["le"]), sample.value)
            for metric in self.admission_latency.collect()
            for sample in metric.samples
            if sample.name.endswith("_bucket")
        ]
