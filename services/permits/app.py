"""Assembles the permits service from the kit: settings, routes, jobs, metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram

from services.permits import api, handlers
from services.permits.catalogue import load_catalogue
from services.permits.domain import Application, SlaPolicy
from services.permits.repository import CitizenRecords
from shared.kit.app import PeriodicJob, Service, ServiceSpec, create_app, service_settings
from shared.kit.jobs import counting, purge_attachments, recounting
from shared.kit.metrics import DomainMetrics, Metric
from shared.reference import default_calendar

PROCESSING_BUCKETS = (0, 1, 2, 3, 5, 7, 10, 14, 21, 28, 40, 60)


class PermitsSettings(service_settings("permits", citizen_keys=True)):
    permit_types_file: Path | None = None  # default: services/permits/permit_types.yaml
    sla_check_seconds: float = 30.0
    expiry_check_seconds: float = 300.0
    warn_working_days: int = SlaPolicy.warn_working_days


class PermitMetrics(DomainMetrics):
    processing_days: Histogram = Metric.histogram(
        "sinergi_permits_processing_working_days",
        "Working days from submission to decision (SLA pauses excluded), per permit type",
        ["permit_type", "decision"],
        buckets=PROCESSING_BUCKETS,
    )
    open_applications: Gauge = Metric.gauge(
        "sinergi_permits_open_applications",
        "Applications not yet issued or closed, per permit type and status",
        ["permit_type", "status"],
    )
    watcher_events: Counter = Metric.counter(
        "sinergi_permits_watcher_events_total",
        "Events emitted by the periodic jobs (SLA warnings, breaches, deemed approvals, expiry)",
        ["watcher"],
    )

    def observe_decision(self, application: Application) -> None:
        self.processing_days.labels(application.permit_type.code, application.decision).observe(
            application.processing_days or 0
        )


PermitsService = Service[handlers.Context, PermitMetrics]


_refresh_gauges = recounting(handlers.open_by_status, lambda m: m.open_applications)


def build(settings: PermitsSettings | None = None) -> FastAPI:
    settings = settings or PermitsSettings()
    catalogue = load_catalogue(settings.permit_types_file) if settings.permit_types_file else load_catalogue()

    def context(service: PermitsService) -> handlers.Context:
        return handlers.Context.of(
            service,
            catalogue=catalogue,
            calendar=default_calendar(),
            policy=SlaPolicy(warn_working_days=settings.warn_working_days),
            on_decision=service.domain_metrics.observe_decision,
        )

    spec: ServiceSpec[handlers.Context, PermitMetrics] = ServiceSpec(
        title="Sinergi — Perizinan (permits)",
        description=(
            "Citizens and businesses apply for permits (OSS-RBA business licences, PBG, SLF, "
            "health-facility operating licences) and follow them by tracking code; permit "
            "officers check documents, inspect, decide and issue numbered permits within an "
            "SLA in working days, with fiktif positif (UU 11/2020) where the type allows it."
        ),
        settings=settings,
        domain_metrics=PermitMetrics,
        context=context,
        routers=[api.router],
        jobs=[
            PeriodicJob("attachment-purge", settings.attachment_purge_seconds, purge_attachments),
            PeriodicJob(
                "sla-watcher",
                settings.sla_check_seconds,
                counting(handlers.watch_sla, lambda m: m.watcher_events.labels("sla")),
            ),
            PeriodicJob(
                "expiry-watcher",
                settings.expiry_check_seconds,
                counting(handlers.watch_expiry, lambda m: m.watcher_events.labels("expiry")),
            ),
            PeriodicJob("domain-gauges", 15.0, _refresh_gauges),
        ],
        citizen_data=CitizenRecords(catalogue),
    )
    return create_app(spec)
