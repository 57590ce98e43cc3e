"""Prometheus metrics every service exposes. One registry per service instance, so
several services can share a process in tests without their metrics colliding."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class KitMetrics:
    """The kit's metrics of one service instance, on its own registry."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.http_requests = self.counter(
            "sinergi_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
        )
        self.http_refused_busy = self.counter(
            "sinergi_http_refused_busy_total", "Requests answered 503 at once because the service was full"
        )
        self.http_latency = self.histogram(
            "sinergi_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        )
        self.outbox_pending = self.gauge(
            "sinergi_outbox_pending_events", "Events committed but not yet published"
        )
        self.outbox_oldest_age = self.gauge(
            "sinergi_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished event (0 when none)"
        )
        self.outbox_published = self.counter(
            "sinergi_outbox_published_total", "Events published by the relay", ["topic"]
        )
        self.outbox_failures = self.counter(
            "sinergi_outbox_publish_failures_total", "Events the relay failed to publish"
        )
        self.relay_active = self.gauge(
            "sinergi_outbox_relay_active", "1 when this instance holds the relay lock"
        )
        self.consumed = self.counter(
            "sinergi_consumer_events_total", "Events applied by idempotent consumers", ["consumer", "type"]
        )
        self.duplicates = self.counter(
            "sinergi_inbox_duplicates_skipped_total",
            "Redelivered events recognised by the inbox and skipped",
            ["consumer"],
        )
        self.handler_retries = self.counter(
            "sinergi_consumer_retries_total", "Handler attempts that failed and were retried", ["consumer"]
        )
        self.dead_letters = self.counter(
            "sinergi_dead_letters_total", "Messages sent to the dead-letter topic", ["consumer", "reason"]
        )
        self.unknown_types = self.counter(
            "sinergi_consumer_unknown_types_total",
            "Events of types this consumer does not know, counted and skipped",
            ["consumer", "type"],
        )
        self.consumer_lag = self.gauge(
            "sinergi_consumer_lag_messages",
            "Messages on the partition not yet consumed by the group",
            ["consumer", "topic", "partition"],
        )
        self.ready = self.gauge("sinergi_ready", "1 when database and broker answer", ["dependency"])
        self.rate_limited = self.counter(
            "sinergi_rate_limited_total", "Requests refused (429) by an abuse limit, per rule", ["rule"]
        )

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter on this service's registry."""
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge on this service's registry."""
        return Gauge(name, documentation, labels, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str] = (), *, buckets: Sequence[float]
    ) -> Histogram:
        """A histogram on this service's registry."""
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)


class Metric:
    """A service's domain metric, declared once as an attribute of its `DomainMetrics`
    class, annotated with what an instance holds: `open: Gauge = Metric.gauge(
    "sinergi_x_open", "Open x", ["opd"])`. Each is created on the service's registry,
    never on prometheus_client's global one (several services share a process in tests)."""

    def __init__(self, create: Callable[..., Counter | Gauge | Histogram]) -> None:
        self.create = create  # takes the registry

    # Typed Any: the attribute's annotation says what an instance holds.

    @staticmethod
    def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        return Metric(partial(Counter, name, documentation, labels))

    @staticmethod
    def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
        return Metric(partial(Gauge, name, documentation, labels))

    @staticmethod
    def histogram(
        name: str, documentation: str, labels: Sequence[str] = (), *, buckets: Sequence[float]
    ) -> Any:
        return Metric(partial(Histogram, name, documentation, labels, buckets=buckets))


class DomainMetrics:
    """The base of a service's domain metrics, declared with `Metric`; the class is the
    service's `ServiceSpec.domain_metrics`, its metrics created on the service's registry."""

    def __init__(self, kit: KitMetrics) -> None:
        for cls in reversed(type(self).__mro__):
            for name, declared in vars(cls).items():
                if isinstance(declared, Metric):
                    setattr(self, name, declared.create(registry=kit.registry))


def set_gauge(gauge: Gauge, rows: Iterable[Sequence[Any]]) -> None:
    """Replace every series of a labelled `gauge` by `rows`, each its label values then
    its value: a series absent from `rows` goes away instead of keeping a stale value
    (the domain gauges are recounted from the database, e.g. open complaints per OPD)."""
    gauge.clear()
    for *labels, value in rows:
        gauge.labels(*labels).set(value)
