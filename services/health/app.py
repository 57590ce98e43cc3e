"""Assembles the health service from the kit: settings, routes, jobs, metrics."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Self

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from pydantic import Field, model_validator

from services.health import api, fhir, handlers
from services.health.domain import BookingPolicy, Payment
from services.health.repository import CitizenRecords
from services.health.seed import DEFAULT_PATH, load_seed
from shared.kit.app import PeriodicJob, Service, ServiceSpec, create_app, service_settings
from shared.kit.clock import clock_on, utc_now
from shared.kit.jobs import counting, recounting
from shared.kit.metrics import DomainMetrics, Metric
from shared.reference import default_calendar


class HealthSettings(service_settings("health", citizen_keys=True)):
    # Load seed.yaml into empty tables at start-up (set to "" to start empty).
    seed_path: str = str(DEFAULT_PATH)
    no_show_check_seconds: float = 60.0
    max_days_ahead: int = BookingPolicy.max_days_ahead
    checkin_opens_minutes: int = BookingPolicy.checkin_opens_minutes
    no_show_grace_minutes: int = BookingPolicy.no_show_grace_minutes
    # What one verified contact may hold at once (reasons: docs/operations.md, limits).
    active_bookings_per_contact: int = Field(BookingPolicy.active_per_contact, ge=1)
    active_bookings_per_nik: int = Field(BookingPolicy.active_per_nik, ge=1)
    fhir_system_base: str = fhir.DEFAULT_SYSTEM_BASE
    # Development only (HEALTH_TODAY): the service's "today", its clock moved by whole days.
    # Check-in, tasks and call-next accept only today's queue, so a test of them picks a
    # day the polyclinic practises instead of the machine's date (maybe a holiday).
    today: date | None = None

    @model_validator(mode="after")
    def _today_in_development_only(self) -> Self:
        if self.today is not None and self.platform.environment == "production":
            raise ValueError("HEALTH_TODAY moves the service's clock: refused in production")
        return self


class HealthMetrics(DomainMetrics):
    queue_waiting: Gauge = Metric.gauge(
        "sinergi_health_queue_waiting",
        "Patients waiting for the polyclinic today (task 3)",
        ["facility", "polyclinic"],
    )
    bookings: Counter = Metric.counter(
        "sinergi_health_bookings_total",
        "Booking attempts by facility, payment and outcome (booked, repeated, quota_full, too_many)",
        ["facility", "payment", "outcome"],
    )
    no_shows: Counter = Metric.counter("sinergi_health_no_shows_total", "Appointments marked no-show")

    def observe_booking(self, facility: str, payment: Payment, outcome: str) -> None:
        self.bookings.labels(facility, payment.value, outcome).inc()


HealthService = Service[handlers.Context, HealthMetrics]
_mark_no_shows = counting(handlers.mark_no_shows, lambda m: m.no_shows)
_refresh_gauges = recounting(handlers.waiting_by_polyclinic, lambda m: m.queue_waiting)


def build(settings: HealthSettings | None = None) -> FastAPI:
    settings = settings or HealthSettings()

    calendar = default_calendar()
    clock = clock_on(settings.today, calendar.tz) if settings.today else utc_now

    def context(service: HealthService) -> handlers.Context:
        return handlers.Context.of(
            service,
            calendar=calendar,
            clock=clock,
            policy=BookingPolicy(
                max_days_ahead=settings.max_days_ahead,
                checkin_opens_minutes=settings.checkin_opens_minutes,
                no_show_grace_minutes=settings.no_show_grace_minutes,
                active_per_contact=settings.active_bookings_per_contact,
                active_per_nik=settings.active_bookings_per_nik,
            ),
            fhir_system_base=settings.fhir_system_base,
            on_booking=service.domain_metrics.observe_booking,
        )

    async def seed(service: HealthService) -> None:
        """Load the seed into empty tables (idempotent), before the first request."""
        if settings.seed_path:
            await handlers.seed_if_empty(service.context, load_seed(Path(settings.seed_path)))

    spec: ServiceSpec[handlers.Context, HealthMetrics] = ServiceSpec(
        title="Sinergi — Kesehatan (health)",
        description=(
            "Online polyclinic booking for the regency's RSUD and puskesmas (JKN and non-JKN "
            "quotas per doctor session), the BPJS antrean task flow from check-in to done, "
            "live queue boards, bed availability per ward, and FHIR R4 export of finished "
            "visits for SATUSEHAT."
        ),
        settings=settings,
        domain_metrics=HealthMetrics,
        context=context,
        routers=[api.router],
        jobs=[
            PeriodicJob("no-show", settings.no_show_check_seconds, _mark_no_shows),
            PeriodicJob("domain-gauges", 15.0, _refresh_gauges),
        ],
        on_start=seed,
        citizen_data=CitizenRecords(),
    )
    return create_app(spec)
