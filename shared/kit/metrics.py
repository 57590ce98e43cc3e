"""Prometheus metrics every service exposes. One registry per service instance, so
several services can share a process in tests without their metrics colliding."""

from __future__ import annotations

import os
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

if TYPE_CHECKING:
    import asyncpg

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Waiting for a pooled connection: none at all when one is idle, up to the pool's 5 s timeout.
ACQUIRE_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Records per relay or consumer batch, up to the relay's default batch (SINERGI_OUTBOX_BATCH_SIZE).
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
# From an event's publishing to a consumer having applied it (the view-freshness SLO
# reads the 5 s bucket: deploy/prometheus/slos.yml).
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# The resident memory one service process may use (docs/capacity.md, measured by `make
# bench`); exported as sinergi_memory_budget_bytes, which the alert and the dashboard read.
MEMORY_BUDGET_MB = 150
MEMORY_BUDGET_BYTES = MEMORY_BUDGET_MB * 2**20  # MB as the bench counts them (RSS / 2**20)
ROOT = Path(__file__).resolve().parents[2]


@cache
def build_info() -> dict[str, str]:
    """What this process runs: the project's version and the commit it was built from,
    SINERGI_COMMIT (the image sets it at build time: Dockerfile), else the checkout's HEAD
    (development), else "unknown"."""
    return {"version": _version(), "commit": os.environ.get("SINERGI_COMMIT") or _git_head() or "unknown"}


def _version() -> str:
    # pyproject.toml, not package metadata: the project itself is never installed (uv
    # `package = false`); the image copies the file next to the code.
    try:
        return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _git_head() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    head = result.stdout.strip()
    return head if result.returncode == 0 and head else None


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
        self.consumer_restarts = self.counter(
            "sinergi_consumer_restarts_total",
            "Consumer group members the watchdog restarted because they had stopped consuming",
            ["group", "reason"],
        )
        self.ready = self.gauge("sinergi_ready", "1 when database and broker answer", ["dependency"])
        self.rate_limited = self.counter(
            "sinergi_rate_limited_total", "Requests refused (429) by an abuse limit, per rule", ["rule"]
        )
        self.relay_batch = self.histogram(
            "sinergi_outbox_batch_events", "Events per batch the relay publishes", buckets=BATCH_BUCKETS
        )
        self.consumer_batch = self.histogram(
            "sinergi_consumer_batch_records",
            "Records per batch a consumer applies in one transaction (before the record-by-record fallback)",
            ["consumer"],
            buckets=BATCH_BUCKETS,
        )
        self.consumer_delay = self.histogram(
            "sinergi_consumer_delay_seconds",
            "Time from an event's publishing (its Kafka timestamp) to a consumer having applied it",
            ["consumer"],
            buckets=DELAY_BUCKETS,
        )
        # The database pool, read from the pool at each scrape once it is open (`watch_pool`).
        self.pool_size = self.gauge("sinergi_db_pool_connections", "Connections the pool holds open")
        self.pool_in_use = self.gauge("sinergi_db_pool_connections_in_use", "Pooled connections lent out")
        self.pool_idle = self.gauge(
            "sinergi_db_pool_connections_idle", "Open pooled connections not lent out"
        )
        self.pool_max = self.gauge(
            "sinergi_db_pool_max_connections", "The most connections the pool opens (<NAME>_DB_POOL_MAX)"
        )
        self.pool_acquire_wait = self.histogram(
            "sinergi_db_pool_acquire_wait_seconds",
            "Time taken to get a connection from the pool (waiting when all are lent out)",
            buckets=ACQUIRE_BUCKETS,
        )
        self.memory_budget = self.gauge(
            "sinergi_memory_budget_bytes",
            "Resident memory a service process is planned for (docs/capacity.md)",
        )
        self.memory_budget.set(MEMORY_BUDGET_BYTES)
        Info("sinergi_build", "Version and source commit of the running code", registry=self.registry).info(
            build_info()
        )
        # Resident memory, CPU seconds, open file descriptors, garbage collections, Python's
        # version: prometheus-client's default collectors, here on the service's registry.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        """Report `pool`'s connections: the gauges read it whenever they are scraped."""
        self.pool_size.set_function(pool.get_size)
        self.pool_idle.set_function(pool.get_idle_size)
        self.pool_in_use.set_function(lambda: pool.get_size() - pool.get_idle_size())
        self.pool_max.set_function(pool.get_max_size)

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
