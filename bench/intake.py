"""Phase 3, HTTP intake: each create endpoint stepped up the open-loop ladder, its CPU per
request against the reference (bench/reference.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from bench import reference
from bench.openloop import open_loop
from bench.services import ServiceProcess, fresh_database
from services.complaints.api import FileComplaintIn
from shared.kit.auth import issue_token
from shared.kit.bodies import example_of
from shared.kit.settings import PlatformSettings
from shared.reference import WorkingCalendar
from shared.runtime.dev_issuer import DevelopmentIssuer, development_session
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure

APPLICATION = {
    "permit_type": "pbg",
    "applicant": {"nik": "3306061708900001", "name": "Budi Santoso", "phone": "081234567890"},
    "desa_code": "33.06.01.2001",
    "details": {"building_function": "hunian", "building_area_m2": 120, "floors": 2},
    "documents": [
        {"code": code, "ref": f"dms://{code}/1"}
        for code in ("ktp", "bukti_tanah", "krk", "gambar_arsitektur", "gambar_struktur", "gambar_mep")
    ],
}

# The complaints API's own documented example.
COMPLAINT = example_of(FileComplaintIn)


@dataclass(frozen=True)
class Intake:
    """One create endpoint under the open-loop generator."""

    service: str
    path: str
    # bodies(offset, n): n request bodies; each run gets its own (a patient books once a day).
    bodies: Callable[[int, int], dict[str, Any] | list[dict[str, Any]]]
    # Called once the service is ready (e.g. an officer opens a polyclinic for the run).
    setup: Callable[[str], Awaitable[None]] | None = None
    # The contact the bodies name when the endpoint needs a citizen session for it.
    citizen: str | None = None
    # sessions(issuer, offset, n): each body's own citizen's session, when the bodies are
    # distinct citizens' (a booking waits on its contact's lock: one contact would queue).
    sessions: Callable[[DevelopmentIssuer, int, int], list[dict[str, str]]] | None = None
    # The process's module, when not the service's own (the reference).
    module: str | None = None


def _same_complaint(offset: int, n: int) -> dict[str, Any]:
    return COMPLAINT


def _same_application(offset: int, n: int) -> dict[str, Any]:
    return APPLICATION


COMPLAINTS_INTAKE = Intake("complaints", "/complaints", _same_complaint)
PERMITS_INTAKE = Intake("permits", "/applications", _same_application)
REFERENCE_ITEM = {"title": COMPLAINT["title"], "description": COMPLAINT["description"]}
# The cost of a request is measured against a minimal route storing one row (bench/reference.py).
REFERENCE_INTAKE = Intake(
    "reference", reference.PATH, lambda offset, n: REFERENCE_ITEM, module="bench.reference"
)
COST_TARGET = 2.0  # an endpoint's CPU per request, as a multiple of the reference's


@dataclass(frozen=True)
class RunningIntake:
    """An intake endpoint's service started, set up and warmed up."""

    service: ServiceProcess
    base: str  # http://127.0.0.1:<port>
    url: str  # base + the endpoint's path
    headers: dict[str, str] | None  # the session of the target's citizen, if it needs one
    issuer: DevelopmentIssuer  # whose sessions the service trusts
    target: Intake

    async def offer(self, rate: int, seconds: float, offset: int, **options: Any) -> dict[str, Any]:
        """The target's bodies offset.. at `rate` for `seconds` (open_loop's `options`),
        each with its citizen's session when the bodies are distinct citizens'."""
        n = int(rate * seconds)
        bodies = self.target.bodies(offset, n)
        sessions = self.target.sessions(self.issuer, offset, n) if self.target.sessions else None
        return await open_loop(
            self.url, rate, seconds, bodies, headers=self.headers, per_request_headers=sessions, **options
        )


WARM_UP_REQUESTS = 40  # 2 s at 20 req/s


@contextlib.asynccontextmanager
async def intake_service(
    infra: Infrastructure, target: Intake, database_url: str | None = None
) -> AsyncIterator[RunningIntake]:
    """`target`'s service as its own process on a fresh database (or `database_url`),
    set up, and warmed up (prepared statements, caches, pools), as a service in use is:
    WARM_UP_REQUESTS of its bodies at 20 req/s, not recorded."""
    url = database_url or await fresh_database(infra)
    port = free_port()
    prefix = target.service.upper()
    issuer = DevelopmentIssuer().start()
    key = PlatformSettings().citizen_ref_key.get_secret_value()
    headers = issuer.session(key, target.citizen) if target.citizen else None
    service = ServiceProcess(
        target.module or f"services.{target.service}",
        {
            **infra.broker_env(),
            f"{prefix}_DATABASE_URL": url,
            f"{prefix}_PORT": str(port),
            **issuer.env,
        },
        port,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await service.wait_ready()
        if target.setup is not None:
            await target.setup(base)
        running = RunningIntake(service, base, f"{base}{target.path}", headers, issuer, target)
        await running.offer(20, WARM_UP_REQUESTS / 20, 0)
        yield running
    finally:
        service.stop()
        issuer.stop()


async def intake(
    infra: Infrastructure,
    rates: tuple[int, ...],
    seconds: float,
    raw_pg_per_s: float,
    target: Intake = COMPLAINTS_INTAKE,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Step up the offered rate until a run has errors or its p99 passes 1 s (a queue
    built up: the rate was not held). `database_url`: a prepared database (growth)."""
    async with intake_service(infra, target, database_url) as running:
        service = running.service
        idle_rss = service.rss_mb()
        stop = asyncio.Event()
        sampler = asyncio.create_task(service.sample_rss(stop))
        runs = []
        offset = WARM_UP_REQUESTS
        for rate in rates:
            sampling = asyncio.create_task(service.profile(f"intake-{target.service}-{rate}", seconds))
            cpu_before = service.cpu_seconds()
            result = await running.offer(rate, seconds, offset)
            offset += int(rate * seconds)
            # CPU the service spent per accepted request: 1000 / this = the most one core
            # can take, whatever the rest of the machine does.
            result["service_cpu_ms_per_request"] = (
                (service.cpu_seconds() - cpu_before) * 1000 / result["ok"] if result["ok"] else None
            )
            await sampling
            runs.append(result)
            print(f"  {target.service} {rate:>5} req/s: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                  f"errors {result['errors']} {result['statuses']}, service CPU "
                  f"{result['service_cpu_ms_per_request'] or float('nan'):.2f} ms/request", flush=True)  # fmt: skip
            if result["errors"] or result["p99_ms"] > 1000:
                break
        stop.set()
        await sampler
        held = [r for r in runs if not r["errors"] and r["p99_ms"] <= 1000]
        best = max((r["rate"] for r in held), default=0)
        return {
            "endpoint": f"POST {target.path}",
            "runs": runs,
            "highest_held_rps": best,
            "ratio_to_raw_pg": best / raw_pg_per_s if raw_pg_per_s else None,
            "rss_idle_mb": idle_rss,
            "rss_peak_mb": service.peak_rss / 2**20,
        }


# Health: patients book the benchmark polyclinic on the next practice days, one NIK each.
BENCH_POLYCLINIC = "BNCH"
BENCH_FACILITY = "RSUD-TJITRO"
BOOKING_DAYS = 21  # bookings spread over three weeks: places for 21,000 patients
BENCH_PHONE = "081234567890"  # the verified contact of the rush's probe booking


async def open_bench_polyclinic(base_url: str) -> None:
    """As a health officer: a polyclinic with one doctor practising daily, 1,000 JKN
    places a day (the most a schedule allows), so the run measures booking, not
    refusals."""
    await open_polyclinic(base_url, BENCH_POLYCLINIC, 1000)


async def open_polyclinic(base_url: str, polyclinic: str, places: int) -> None:
    """As a health officer: `polyclinic` at the bench facility with one doctor practising
    daily 07:00-21:00, `places` JKN places a session (no non-JKN places)."""
    secret = PlatformSettings().auth_secret.get_secret_value()
    officer = {
        "Authorization": f"Bearer {issue_token(secret, subject='bench', role='health_officer', facility=BENCH_FACILITY)}"
    }
    steps = [
        (f"/facilities/{BENCH_FACILITY}/polyclinics/{polyclinic}", {"name": f"Poli {polyclinic}", "queue_prefix": "B"}),
        (f"/doctors/{polyclinic}-D01", {"name": "dr. Uji Beban", "facility": BENCH_FACILITY,
                                        "polyclinic": polyclinic}),
        *[
            (f"/doctors/{polyclinic}-D01/schedules/{weekday}",
             {"start": "07:00", "end": "21:00", "minutes_per_patient": 1, "quota_jkn": places, "quota_non_jkn": 0})
            for weekday in range(7)
        ],
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=base_url, headers=officer, timeout=30) as client:
        for path, body in steps:
            response = await client.put(path, json=body)
            response.raise_for_status()


def practice_days() -> list[date]:
    calendar = WorkingCalendar()
    today = datetime.now(calendar.tz).date()
    days = [today + timedelta(days=i) for i in range(1, 60)]
    return [d for d in days if not calendar.holiday_name(d)][:BOOKING_DAYS]


def booking_body(i: int, phone: str, polyclinic: str, day: date) -> dict[str, Any]:
    """Patient i's JKN booking at the bench facility, made from `phone`."""
    # A distinct, well-formed NIK per patient: birth day, month, year and serial vary.
    nik = f"330601{1 + i % 28:02d}{1 + (i // 28) % 12:02d}{60 + (i // 336) % 40:02d}{1 + i // 13_440:04d}"
    return {"nik": nik, "phone": phone, "facility": BENCH_FACILITY, "polyclinic": polyclinic,
            "date": day.isoformat(), "payment": "jkn", "jkn_card": "0001234567890", "new_patient": False}  # fmt: skip


def citizen_phone(i: int) -> str:
    """A distinct mobile number per citizen."""
    return f"0813{i:08d}"


def citizen_sessions(issuer: DevelopmentIssuer, offset: int, n: int) -> list[dict[str, str]]:
    """The sessions of citizens offset..offset+n-1, as after each proved their phone."""
    key = PlatformSettings().citizen_ref_key.get_secret_value()
    return [development_session(issuer.url, key, citizen_phone(i)) for i in range(offset, offset + n)]


def _bookings(offset: int, n: int) -> list[dict[str, Any]]:
    """Patient i books from their own phone (citizen i): distinct citizens, as in a
    real morning, not one contact's bookings queueing on its lock."""
    days = practice_days()
    return [
        booking_body(i, citizen_phone(i), BENCH_POLYCLINIC, days[i % len(days)])
        for i in range(offset, offset + n)
    ]


HEALTH_INTAKE = Intake("health", "/appointments", _bookings, open_bench_polyclinic, sessions=citizen_sessions)
