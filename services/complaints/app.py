"""Assembles the complaints service from the kit: settings, routes, jobs, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from pydantic_settings import SettingsConfigDict

from services.complaints import api, handlers
from services.complaints.catalogue import load_catalogue
from services.complaints.domain import SlaPolicy
from services.complaints.repository import CitizenRecords
from shared.kit.app import PeriodicJob, Service, ServiceSpec, create_app
from shared.kit.jobs import counting, recounting
from shared.kit.metrics import KitMetrics
from shared.kit.settings import ServiceSettings
from shared.reference import default_calendar
from shared.runtime.topology import port_of

NAME = "complaints"
PORT = port_of(NAME)


class ComplaintsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore")

    port: int = PORT
    database_url: str = "postgresql://postgres@127.0.0.1:5432/complaints"
    sla_check_seconds: float = 30.0
    verify_days: int = 3
    followup_days: int = 5
    completion_days: int = 60
    reopen_window_days: int = 14


@dataclass
class ComplaintMetrics:
    open_by_opd: Gauge
    sla_events: Counter


def _metrics(kit: KitMetrics) -> ComplaintMetrics:
    return ComplaintMetrics(
        open_by_opd=kit.gauge("sinergi_complaints_open", "Open complaints per OPD", ["opd"]),
        sla_events=kit.counter(
            "sinergi_complaints_sla_events_total", "SLA warnings and breaches emitted", ["event"]
        ),
    )


ComplaintsService = Service[handlers.Context, ComplaintMetrics]
_watch_sla = counting(handlers.watch_sla, lambda m: m.sla_events.labels("emitted"))
_refresh_gauges = recounting(handlers.open_by_opd, lambda m: m.open_by_opd)


def build(settings: ComplaintsSettings | None = None) -> FastAPI:
    settings = settings or ComplaintsSettings()

    def context(service: ComplaintsService) -> handlers.Context:
        return handlers.Context.of(
            service,
            catalogue=load_catalogue(),
            calendar=default_calendar(),
            policy=SlaPolicy(
                verify_days=settings.verify_days,
                followup_days=settings.followup_days,
                completion_days=settings.completion_days,
                reopen_window_days=settings.reopen_window_days,
            ),
        )

    spec: ServiceSpec[handlers.Context, ComplaintMetrics] = ServiceSpec(
        name=NAME,
        title="Sinergi — Pengaduan (complaints)",
        description=(
            "Citizens file complaints, aspirations and information requests and follow them "
            "by tracking code; the regency coordinator verifies and disposes them to OPDs, "
            "which respond and resolve within SLA (working days, Perpres 76/2013)."
        ),
        settings=settings,
        migrations=Path(__file__).with_name("migrations"),
        domain_metrics=_metrics,
        context=context,
        routers=[api.router],
        jobs=[
            PeriodicJob("sla-watcher", settings.sla_check_seconds, _watch_sla),
            PeriodicJob("domain-gauges", 15.0, _refresh_gauges),
        ],
        event_source=handlers.Context.event_source(settings.platform),
        citizen_data=CitizenRecords(),
    )
    return create_app(spec)
