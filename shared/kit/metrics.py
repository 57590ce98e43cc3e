"""Prometheus metrics every service exposes. One registry per service instance, so
several services can share a process in tests without their metrics colliding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class KitMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "sinergi_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "sinergi_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_pending = Gauge(
            "sinergi_outbox_pending_events", "Events committed but not yet published", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "sinergi_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished event (0 when none)",
            registry=r,
        )
        self.outbox_published = Counter(
            "sinergi_outbox_published_total", "Events published by the relay", ["topic"], registry=r
        )
        self.outbox_failures = Counter(
            "sinergi_outbox_publish_failures_total",
            "Events the relay failed to publish",
            registry=r,
        )
        self.relay_active = Gauge(
            "sinergi_outbox_relay_active", "1 when this instance holds the relay lock", registry=r
        )
        self.consumed = Counter(
            "sinergi_consumer_events_total",
            "Events applied by idempotent consumers",
            ["consumer", "type"],
            registry=r,
        )
        self.duplicates = Counter(
            "sinergi_inbox_duplicates_skipped_total",
            "Redelivered events recognised by the inbox and skipped",
            ["consumer"],
            registry=r,
        )
        self.handler_retries = Counter(
            "sinergi_consumer_retries_total",
            "Handler attempts that failed and were retried",
            ["consumer"],
            registry=r,
        )
        self.dead_letters = Counter(
            "sinergi_dead_letters_total",
            "Messages sent to the dead-letter topic",
            ["consumer", "reason"],
            registry=r,
        )
        self.unknown_types = Counter(
            "sinergi_consumer_unknown_types_total",
            "Events of types this consumer does not know, counted and skipped",
            ["consumer", "type"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "sinergi_consumer_lag_messages",
            "Messages on the partition not yet consumed by the group",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.ready = Gauge("sinergi_ready", "1 when database and broker answer", ["dependency"], registry=r)

    # A service's own (domain) metrics go on its registry too, declared through these so
    # that none lands on prometheus_client's global registry by a forgotten argument.

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A domain counter on this service's registry."""
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A domain gauge on this service's registry."""
        return Gauge(name, documentation, labels, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str] = (), *, buckets: Sequence[float]
    ) -> Histogram:
        """A domain histogram on this service's registry."""
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)


def set_gauge(gauge: Gauge, rows: Iterable[Sequence[Any]]) -> None:
    """Replace every series of a labelled `gauge` by `rows`, each its label values then
    its value: a series absent from `rows` goes away instead of keeping a stale value
    (the domain gauges are recounted from the database, e.g. open complaints per OPD)."""
    gauge.clear()
    for *labels, value in rows:
        gauge.labels(*labels).set(value)
