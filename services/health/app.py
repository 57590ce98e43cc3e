"""Assembles the health service from the kit: settings, routes, jobs, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from pydantic_settings import SettingsConfigDict

from services.health import api, fhir, handlers
from services.health.domain import BookingPolicy, Payment
from services.health.repository import CitizenRecords
from services.health.seed import DEFAULT_PATH, load_seed
from shared.kit.app import PeriodicJob, Service, ServiceSpec, create_app
from shared.kit.jobs import counting, recounting
from shared.kit.metrics import KitMetrics
from shared.kit.settings import ServiceSettings
from shared.reference import default_calendar
from shared.runtime.topology import port_of

NAME = "health"
PORT = port_of(NAME)


class HealthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEALTH_", extra="ignore")

    port: int = PORT
    database_url: str = "postgresql://postgres@127.0.0.1:5432/health"
    # Load seed.yaml into empty tables at start-up (set to "" to start empty).
    seed_path: str = str(DEFAULT_PATH)
    no_show_check_seconds: float = 60.0
    max_days_ahead: int = 30
    checkin_opens_minutes: int = 180
    no_show_grace_minutes: int = 60
    fhir_system_base: str = fhir.DEFAULT_SYSTEM_BASE


@dataclass
class HealthMetrics:
    queue_waiting: Gauge
    bookings: Counter
    no_shows: Counter

    def observe_booking(self, facility: str, payment: Payment, outcome: str) -> None:
        self.bookings.labels(facility, payment.value, outcome).inc()


def _metrics(kit: KitMetrics) -> HealthMetrics:
    return HealthMetrics(
        queue_waiting=kit.gauge(
            "sinergi_health_queue_waiting",
            "Patients waiting for the polyclinic today (task 3)",
            ["facility", "polyclinic"],
        ),
        bookings=kit.counter(
            "sinergi_health_bookings_total",
            "Booking attempts by facility, payment and outcome (booked, quota_full)",
            ["facility", "payment", "outcome"],
        ),
        no_shows=kit.counter("sinergi_health_no_shows_total", "Appointments marked no-show"),
    )


HealthService = Service[handlers.Context, HealthMetrics]
_mark_no_shows = counting(handlers.mark_no_shows, lambda m: m.no_shows)
_refresh_gauges = recounting(handlers.waiting_by_polyclinic, lambda m: m.queue_waiting)


def build(settings: HealthSettings | None = None) -> FastAPI:
    settings = settings or HealthSettings()

    def context(service: HealthService) -> handlers.Context:
        return handlers.Context.of(
            service,
            calendar=default_calendar(),
            policy=BookingPolicy(
                max_days_ahead=settings.max_days_ahead,
                checkin_opens_minutes=settings.checkin_opens_minutes,
                no_show_grace_minutes=settings.no_show_grace_minutes,
            ),
            fhir_system_base=settings.fhir_system_base,
            on_booking=service.domain_metrics.observe_booking,
        )

    async def seed(service: HealthService) -> None:
        """Load the seed into empty tables (idempotent), before the first request."""
        if settings.seed_path:
            await handlers.seed_if_empty(service.context, load_seed(Path(settings.seed_path)))

    spec: ServiceSpec[handlers.Context, HealthMetrics] = ServiceSpec(
        name=NAME,
        title="Sinergi — Kesehatan (health)",
        description=(
            "Online polyclinic booking for the regency's RSUD and puskesmas (JKN and non-JKN "
            "quotas per doctor session), the BPJS antrean task flow from check-in to done, "
            "live queue boards, bed availability per ward, and FHIR R4 export of finished "
            "visits for SATUSEHAT."
        ),
        settings=settings,
        migrations=Path(__file__).with_name("migrations"),
        domain_metrics=_metrics,
        context=context,
        routers=[api.router],
        jobs=[
            PeriodicJob("no-show", settings.no_show_check_seconds, _mark_no_shows),
            PeriodicJob("domain-gauges", 15.0, _refresh_gauges),
        ],
        on_start=seed,
        event_source=handlers.Context.event_source(settings.platform),
        citizen_data=CitizenRecords(),
    )
    return create_app(spec)
