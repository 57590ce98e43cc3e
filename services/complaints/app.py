"""Assembles the complaints service from the kit: settings, routes, jobs, metrics."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter, Gauge

from services.complaints import api, handlers, open311_api
from services.complaints.catalogue import load_catalogue
from services.complaints.domain import SlaPolicy
from services.complaints.repository import CitizenRecords
from shared.kit.app import PeriodicJob, Service, ServiceSpec, create_app, service_settings
from shared.kit.jobs import counting, purge_attachments, recounting
from shared.kit.metrics import DomainMetrics, Metric
from shared.reference import default_calendar


class ComplaintsSettings(service_settings("complaints", citizen_keys=True)):
    sla_check_seconds: float = 30.0
    # The SLA policy's numbers (working days; reopening in calendar days), the domain's by default.
    verify_days: int = SlaPolicy.verify_days
    followup_days: int = SlaPolicy.followup_days
    completion_days: int = SlaPolicy.completion_days
    reopen_window_days: int = SlaPolicy.reopen_window_days


class ComplaintMetrics(DomainMetrics):
    open_by_opd: Gauge = Metric.gauge("sinergi_complaints_open", "Open complaints per OPD", ["opd"])
    sla_events: Counter = Metric.counter(
        "sinergi_complaints_sla_events_total", "SLA warnings and breaches emitted", ["event"]
    )


ComplaintsService = Service[handlers.Context, ComplaintMetrics]
_watch_sla = counting(handlers.watch_sla, lambda m: m.sla_events.labels("emitted"))
_refresh_gauges = recounting(handlers.open_by_opd, lambda m: m.open_by_opd)


def build(settings: ComplaintsSettings | None = None) -> FastAPI:
    settings = settings or ComplaintsSettings()
    policy = SlaPolicy(
        verify_days=settings.verify_days,
        followup_days=settings.followup_days,
        completion_days=settings.completion_days,
        reopen_window_days=settings.reopen_window_days,
    )

    def context(service: ComplaintsService) -> handlers.Context:
        return handlers.Context.of(
            service, catalogue=load_catalogue(), calendar=default_calendar(), policy=policy
        )

    spec: ServiceSpec[handlers.Context, ComplaintMetrics] = ServiceSpec(
        title="Sinergi — Pengaduan (complaints)",
        description=(
            "Citizens file complaints, aspirations and information requests and follow them "
            "by tracking code; the regency coordinator verifies and disposes them to OPDs, "
            "which respond and resolve within SLA (working days, Perpres 76/2013)."
        ),
        settings=settings,
        domain_metrics=ComplaintMetrics,
        context=context,
        routers=[api.router, open311_api.router],
        jobs=[
            PeriodicJob("sla-watcher", settings.sla_check_seconds, _watch_sla),
            PeriodicJob("domain-gauges", 15.0, _refresh_gauges),
            PeriodicJob("attachment-purge", settings.attachment_purge_seconds, purge_attachments),
        ],
        citizen_data=CitizenRecords(),
    )
    return create_app(spec)
