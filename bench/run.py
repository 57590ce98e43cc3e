"""`make bench` / `make bench-quick`: throughput, latency and memory of every path, side
by side with the raw broker and raw PostgreSQL measured in the same run.

Everything runs on the embedded runtime (or explicit settings) started here on free
ports. On the embedded runtime the broker phases (raw produce and consume, the relay, end
to end) run on Tansu and on Apache Kafka, the latter started beside it. Results: bench/results/latest.json, latest.md (the table the README links) and
PNG plots. Benchmarks report numbers; a missed target is reported as missed, never
turned into a test failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import profile as profiler
from bench import reference
from services.complaints.api import FileComplaintIn
from services.notifications.app import NotificationsSettings
from shared.kit.auth import issue_token
from shared.kit.bodies import example_of
from shared.kit.bus import EventBus, producer_options
from shared.kit.db import connect, migrate
from shared.kit.metrics import MEMORY_BUDGET_MB, KitMetrics
from shared.kit.outbox import OutboxRelay
from shared.kit.privacy import seal_contact
from shared.kit.reader import assigned_reader
from shared.kit.settings import PlatformSettings
from shared.reference import WorkingCalendar
from shared.runtime.apache_kafka import ApacheKafka
from shared.runtime.dev_issuer import DevelopmentIssuer, development_session
from shared.runtime.embedded import EmbeddedKafka, create_databases, create_topics, free_port
from shared.runtime.select import (
    EMBEDDED_BROKERS,
    IDEMPOTENT_PRODUCER,
    Infrastructure,
    database_url_for,
    embedded_broker,
    embedded_kafka_broker,
    start_infrastructure,
)
from shared.runtime.topology import DOMAIN_PARTITIONS, topics
from shared.schemas import make_envelope
from shared.schemas.common import SealedContact
from shared.schemas.complaints import SOURCE, ComplaintFiled

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EMPTY_MIGRATIONS = ROOT / "bench" / "no_migrations"  # the kit's tables only
PROFILES = RESULTS / "profiles"
PROFILING = False  # set by --profile
PROFILE_SUMMARIES: dict[str, dict[str, list[tuple[str, float]]]] = {}

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
class Profile:
    name: str
    events: int  # events for broker baselines, relay drain and consumers
    pg_seconds: float
    rates: tuple[int, ...]
    rate_seconds: float
    growth_rows: tuple[int, ...]
    growth_rate: int
    e2e_rate: int
    e2e_seconds: float
    consumer_window: float = 30.0  # longest a consumer rate is measured for
    other_rates: tuple[int, ...] = (100, 200, 300, 500, 1000)  # permits and health intake
    other_seconds: float = 5
    # The reference (bench/reference.py) and every endpoint's cost at this rate.
    cost_rate: int = 100
    growth_events: int = 20_000
    growth_window: float = 15.0
    # The booking-window rush (bench/rush.py): citizens booking 100 places within seconds.
    rush_citizens: int = 5000
    rush_seconds: float = 10
    overload_seconds: float = 5  # each intake endpoint offered twice its held rate
    portal_seconds: float = 10  # each citizens' page at 100 req/s (bench/portal_pages.py)


FULL = Profile(
    "full",
    events=100_000,
    pg_seconds=10,
    rates=(100, 200, 300, 500, 1000, 1500, 2000),
    rate_seconds=10,
    growth_rows=(10_000, 100_000, 1_000_000),
    growth_rate=100,
    e2e_rate=200,
    e2e_seconds=60,
)
# A few minutes: complaints only, no growth steps; both brokers.
QUICK = Profile(
    "quick",
    events=10_000,
    pg_seconds=3,
    rates=(100, 300),
    rate_seconds=3,
    growth_rows=(),
    growth_rate=100,
    e2e_rate=50,
    e2e_seconds=5,
    consumer_window=10,
    other_rates=(100,),
    other_seconds=3,
    rush_citizens=2000,
    rush_seconds=4,
    overload_seconds=4,
    portal_seconds=4,
)


def sample_event(i: int = 0, contact: SealedContact | None = None) -> bytes:
    """A complaint-filed event as the complaints service publishes it, with a
    placeholder sealed contact unless a real one is given."""
    now = datetime.now(UTC)
    data = ComplaintFiled(
        complaint_id=str(uuid.uuid4()),
        tracking_code=f"ADU-2611-BNCH-{i:04d}-{i % 100000:05d}",
        status="submitted",
        kind="pengaduan",
        category="jalan_rusak",
        dimension="mobility",
        opd="DPUPR",
        desa_code="33.06.01.2001",
        kecamatan_code="33.06.01",
        citizen_ref="cr1_" + uuid.uuid4().hex,
        contact=contact or SealedContact(sealed="gAAAAAB" + "x" * 120, channels=["sms", "whatsapp"]),
        title="Jalan berlubang di depan balai desa",
        filed_at=now,
        verify_due=now + timedelta(days=3),
        close_due=now + timedelta(days=84),
    )
    envelope = make_envelope(data, subject=data.complaint_id, source=SOURCE, region="33.06")
    return envelope.to_kafka().value


# ----- 1. baselines ------------------------------------------------------------------------


async def raw_produce(settings: PlatformSettings, topic: str, n: int) -> dict[str, Any]:
    """Events sent straight from memory through a producer set up as the services' (on
    Apache Kafka the idempotent producer, acks=all): the relay's ceiling."""
    values = [sample_event(i) for i in range(n)]
    keys = [uuid.uuid4().hex.encode() for _ in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **producer_options(settings))
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, v, key=k) for v, k in zip(values, keys, strict=True)]
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"events": n, "seconds": seconds, "per_s": n / seconds, "bytes_per_event": len(values[0])}


async def raw_consume(bootstrap: str, topic: str, n: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batch:
                started = time.perf_counter()
            seen += sum(len(r) for r in batch.values())
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
    return {"events": n, "seconds": seconds, "per_s": n / seconds}


async def raw_postgres(url: str, seconds: float, pool_size: int = 10) -> dict[str, Any]:
    pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_a (id bigserial PRIMARY KEY, payload text);"
        "CREATE TABLE IF NOT EXISTS bench_b (id bigserial PRIMARY KEY, payload bytea)"
    )
    payload = sample_event()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO bench_a (payload) VALUES ($1)", "x" * 300)
                await conn.execute("INSERT INTO bench_b (payload) VALUES ($1)", payload)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(pool_size)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"transactions": done, "seconds": elapsed, "per_s": done / elapsed, "pool_size": pool_size}


async def broker_baselines(infra: Infrastructure, n: int) -> dict[str, Any]:
    """Raw produce then raw consume of `n` events on a fresh topic of this broker."""
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    await create_topics(infra.kafka_bootstrap, {topic: DOMAIN_PARTITIONS})
    produce = await raw_produce(platform_settings_for(infra), topic, n)
    return {"produce": produce, "consume": await raw_consume(infra.kafka_bootstrap, topic, n)}


# ----- the broker axis ---------------------------------------------------------------------------

# The phases measured on every broker of the axis; the others on the runtime's broker only.
BROKER_PHASES = {"baselines", "relay", "end_to_end"}
BROKER_LABELS = {"tansu": EmbeddedKafka.label, "kafka": ApacheKafka.label}


def platform_settings_for(infra: Infrastructure) -> PlatformSettings:
    """The platform settings a service would have on this broker (idempotence included)."""
    return PlatformSettings(kafka_bootstrap=infra.kafka_bootstrap, kafka_idempotence=infra.kafka_idempotence)


async def broker_axis(
    infra: Infrastructure, work_dir: Path, stack: contextlib.ExitStack
) -> dict[str, Infrastructure]:
    """The runtime's broker first, then, when the runtime is embedded, every other embedded
    broker started here beside it (same PostgreSQL, same topics): each figure has its
    counterpart on the other engine from the same run on the same machine. A broker given
    explicitly or by testcontainers is an Apache Kafka, measured alone."""
    if infra.kafka_kind != "embedded":
        return {"kafka": infra}
    axis = {embedded_broker(): infra}
    for kind in EMBEDDED_BROKERS:
        if kind in axis:
            continue
        print(f"starting {BROKER_LABELS[kind]} beside it…", flush=True)
        broker = stack.enter_context(embedded_kafka_broker(kind, work_dir / kind))
        await create_topics(broker.bootstrap, topics())
        axis[kind] = replace(
            infra,
            kafka_bootstrap=broker.bootstrap,
            kafka_idempotence=IDEMPOTENT_PRODUCER[kind],
            embedded_kafka=broker,
        )
    return axis


# ----- 2. outbox relay -----------------------------------------------------------------------


async def relay_drain(infra: Infrastructure, n: int) -> dict[str, Any]:
    """The outbox relay draining `n` pending rows through the services' producer."""
    platform_settings = platform_settings_for(infra)
    url = await _fresh_database(infra)
    await migrate(url, EMPTY_MIGRATIONS)
    conn = await connect(url)
    value = sample_event()
    rows = [
        (
            uuid.uuid4(),
            "complaints.events",
            uuid.uuid4().hex,
            "id.sinergi.complaints.complaint.filed.v1",
            value,
        )
        for _ in range(n)
    ]
    await conn.copy_records_to_table(
        "outbox", records=rows, columns=["event_id", "topic", "key", "event_type", "value"]
    )
    metrics = KitMetrics("bench-relay")
    bus = EventBus(platform_settings, client_id="bench-relay", registry=metrics.registry)
    await bus.connect_publisher()
    relay = OutboxRelay(url, bus, platform_settings, metrics)
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())
    while await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # polling the database, not an in-process condition
    seconds = time.perf_counter() - started
    relay.stop()
    await task
    await bus.stop()
    await conn.close()
    return {
        "events": n,
        "seconds": seconds,
        "per_s": n / seconds,
        "batch_size": platform_settings.outbox_batch_size,
    }


# ----- 3. HTTP intake --------------------------------------------------------------------------


# The load generator is one client address filing for one contact: the abuse limits (429
# after 30 filings an hour, two unsolicited messages an hour to an unverified contact)
# would measure themselves. They are lifted here; tests/integration/test_abuse_limits.py
# and test_citizen_sessions.py measure them.
WITHOUT_ABUSE_LIMITS = {
    "SINERGI_RATE_LIMIT_FACTOR": "100000",
    "NOTIFICATIONS_UNSOLICITED_PER_HOUR": "1000000",
    # The rush's probe contact books again after each phase (tests/integration/test_health_bookings.py
    # measures what a contact may hold).
    "HEALTH_ACTIVE_BOOKINGS_PER_CONTACT": "100000000",
}


class ServiceProcess:
    """A service started as its own process (as `make run` does), with RSS sampling."""

    def __init__(self, module: str, env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **WITHOUT_ABUSE_LIMITS, **env, "SINERGI_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.peak_rss = 0

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"service on {self.port} did not become ready")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    async def sample_rss(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss = max(self.peak_rss, psutil.Process(self.proc.pid).memory_info().rss)
            await asyncio.sleep(0.2)

    async def profile(self, name: str, seconds: float) -> None:
        """With --profile: sample this process with py-spy and print where it spends
        its time (folded stacks kept in bench/results/profiles/)."""
        if not PROFILING:
            return
        folded = await profiler.record(self.proc.pid, seconds, PROFILES / f"{name}.txt")
        if folded is None:
            print(f"  (py-spy could not profile {name})", flush=True)
            return
        summary = PROFILE_SUMMARIES[name] = profiler.summarise(folded)
        print(f"  profile of {name}:\n{profiler.render(summary)}", flush=True)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def open_loop(
    url: str,
    rate: int,
    seconds: float,
    body: dict[str, Any] | list[dict[str, Any]],
    record: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    per_request_headers: list[dict[str, str]] | None = None,
    details: bool = False,
    retry_for: float | None = None,
) -> dict[str, Any]:
    """Run bench.loadgen as its own process (its CPU is not this process's); the
    keywords are its options of the same names."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file, out = Path(tmp) / "body.json", Path(tmp) / "out.json"
        body_file.write_text(json.dumps(body))
        extra = ["--record", record] if record else []
        extra += [arg for name, value in (headers or {}).items() for arg in ("--header", f"{name}: {value}")]
        extra += ["--method", method] + (["--details"] if details else [])
        extra += ["--retry-for", str(retry_for)] if retry_for is not None else []
        if per_request_headers:
            headers_file = Path(tmp) / "headers.json"
            headers_file.write_text(json.dumps(per_request_headers))
            extra += ["--headers-file", str(headers_file)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--url", url, "--rate", str(rate),
            "--duration", str(seconds), "--body-file", str(body_file), "--out", str(out), *extra, cwd=ROOT,
        )  # fmt: skip
        await proc.wait()
        return json.loads(out.read_text())


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
    url = database_url or await _fresh_database(infra)
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


async def _open_bench_polyclinic(base_url: str) -> None:
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


def _practice_days() -> list[date]:
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
    days = _practice_days()
    return [
        booking_body(i, citizen_phone(i), BENCH_POLYCLINIC, days[i % len(days)])
        for i in range(offset, offset + n)
    ]


HEALTH_INTAKE = Intake(
    "health", "/appointments", _bookings, _open_bench_polyclinic, sessions=citizen_sessions
)


# ----- 6. growth ---------------------------------------------------------------------------------


async def _bulk_load_session(conn: asyncpg.Connection) -> None:
    """Generated rows are consistent by construction: skip the per-row foreign-key
    triggers and the wait for each commit's flush (the load is not what is measured)."""
    await conn.execute("SET session_replication_role = replica; SET synchronous_commit = off")


async def preload_complaints(url: str, rows: int) -> None:
    """Fill the complaints tables as if `rows` complaints had been filed over the past
    years: each with its history entry and its two SLA clocks (generated server-side)."""
    conn = await connect(url)
    try:
        await _bulk_load_session(conn)
        await conn.execute(
            """
            INSERT INTO complaints (id, tracking_code, kind, category, dimension, opd, title,
                description, desa_code, kecamatan_code, anonymous, confidential, status, filed_at,
                citizen_ref)
            SELECT gen_random_uuid(), 'ADU-0001-' || lpad(i::text, 15, '0'), 'pengaduan',
                'jalan_rusak', 'mobility', 'DPUPR', 'Jalan berlubang', 'Lubang besar di jalan desa.',
                '33.06.01.2001', '33.06.01', false, false,
                (ARRAY['submitted','verified','in_progress','resolved','closed'])[1 + i % 5],
                now() - make_interval(mins => i), 'cr1_' || md5(i::text)
            FROM generate_series(1, $1) AS i
            """,
            rows,
        )
        await conn.execute(
            "INSERT INTO complaint_history (complaint_id, at, action, status, actor)"
            " SELECT id, filed_at, 'filed', 'submitted', 'citizen' FROM complaints"
        )
        await conn.execute(
            "INSERT INTO sla_clocks (complaint_id, name, started_at, due_at, warn_at, stopped_at)"
            " SELECT id, clock, filed_at, filed_at + interval '5 days', filed_at + interval '4 days',"
            " CASE WHEN status IN ('resolved', 'closed') THEN filed_at + interval '3 days' END"
            " FROM complaints, unnest(ARRAY['verify', 'close']) AS clock"
        )
        await conn.execute("ANALYZE complaints, complaint_history, sla_clocks")
    finally:
        await conn.close()


async def preload_view(url: str, rows: int) -> None:
    """Fill the integration view's read model with `rows` items and `rows` history
    entries, as after years of events (generated server-side)."""
    conn = await connect(url)
    try:
        await _bulk_load_session(conn)
        await conn.execute(
            """
            INSERT INTO items (code, domain, aggregate, aggregate_id, status, phase, opd, category,
                dimension, desa_code, kecamatan_code, citizen_ref, opened_at, done_at,
                last_event_at, last_event_id, last_event_type)
            SELECT 'ADU-0001-' || lpad(i::text, 15, '0'), 'complaints', 'complaint', md5(i::text),
                CASE WHEN i % 3 = 0 THEN 'closed' ELSE 'in_progress' END,
                CASE WHEN i % 3 = 0 THEN 'done' ELSE 'open' END, 'DPUPR', 'jalan_rusak', 'mobility',
                '33.06.01.2001', '33.06.01', 'cr1_' || md5(i::text), now() - make_interval(mins => i),
                CASE WHEN i % 3 = 0 THEN now() - make_interval(mins => i) + interval '2 days' END,
                now() - make_interval(mins => i), md5(i::text), 'id.sinergi.complaints.complaint.filed.v1'
            FROM generate_series(1, $1) AS i
            """,
            rows,
        )
        await conn.execute(
            "INSERT INTO history (event_id, at, domain, event_type, aggregate, action, code, status,"
            " citizen_ref, opd, category, kecamatan_code, desa_code, dimension)"
            " SELECT last_event_id, last_event_at, domain, last_event_type, aggregate, 'filed', code,"
            " status, citizen_ref, opd, category, kecamatan_code, desa_code, dimension FROM items"
        )
        await conn.execute("ANALYZE items, history")
    finally:
        await conn.close()


async def growth(infra: Infrastructure, profile: Profile, topic: str) -> dict[str, list[dict[str, Any]]]:
    """Intake latency and the integration view's consumer rate with rows already in the
    tables. Both databases of a step are filled at once (PostgreSQL has a core each)."""
    points: dict[str, list[dict[str, Any]]] = {"intake": [], "integration": []}
    for rows in profile.growth_rows:
        started = time.perf_counter()
        complaints_db, view_db = await _fresh_database(infra), await _fresh_database(infra)
        await migrate(complaints_db, ROOT / "services" / "complaints" / "migrations")
        await migrate(view_db, ROOT / "services" / "integration" / "migrations")
        await asyncio.gather(preload_complaints(complaints_db, rows), preload_view(view_db, rows))
        print(f"  {rows:>9,} rows loaded in {time.perf_counter() - started:.0f} s", flush=True)
        result = await intake(
            infra, (profile.growth_rate,), profile.rate_seconds, 0, database_url=complaints_db
        )
        run = result["runs"][0]
        points["intake"].append(
            {"rows": rows, "rate": profile.growth_rate, "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
             "errors": run["errors"], "achieved_rps": run["achieved_rps"],
             "cpu_ms_per_request": run["service_cpu_ms_per_request"]}
        )  # fmt: skip
        consumed = await consume(
            infra, "integration", topic, profile.growth_events, window=profile.growth_window,
            database_url=view_db,
        )  # fmt: skip
        points["integration"].append({"rows": rows, **consumed})
        print(f"  integration view with {rows:>9,} rows: {consumed['per_s']:,.0f} events/s", flush=True)
    return points


# ----- 4. end to end ---------------------------------------------------------------------------------


async def _inbox_count(url: str, consumer: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", consumer)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


def _consumer_env(
    name: str, group: str, topic: str, url: str, port: int, extra: dict[str, str]
) -> dict[str, str]:
    prefix = name.upper()
    topics_value = json.dumps([topic]) if name == "notifications" else topic
    return {
        f"{prefix}_DATABASE_URL": url,
        f"{prefix}_PORT": str(port),
        f"{prefix}_CONSUMER_GROUP": group,
        f"{prefix}_TOPICS": topics_value,
        **extra,
    }


CODE_IN_MAIL = re.compile(rb"ADU-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}")
VIEW_POLL_SECONDS = 0.02
# The deployed default is 100 emails/s per instance (the regency relay's limit); here
# the sink takes anything, so the figure is the pipeline's latency, not the rate limit's
# queue (at 200 filings/s a 100/s limit would make the queue grow without end).
E2E_EMAIL_RATE = "2000"


async def end_to_end(infra: Infrastructure, rate: int, seconds: float) -> dict[str, Any]:
    """Time from the 201 of POST /complaints to (a) the complaint visible in the
    integration view's read model and (b) its acknowledgement email accepted by the
    SMTP sink. Requests come from the open-loop generator (its own process); the view
    is watched by polling its history table every 20 ms."""
    from shared.runtime.smtp_sink import SmtpSink

    sink = SmtpSink(port=free_port()).start()
    bootstrap = infra.broker_env()
    urls = {name: await _fresh_database(infra) for name in ("complaints", "notifications", "integration")}
    ports = {name: free_port() for name in urls}
    groups = {name: f"bench-{name}-{uuid.uuid4().hex[:6]}" for name in ("notifications", "integration")}
    await create_topics(infra.kafka_bootstrap, {f"{g}.dlq": 1 for g in groups.values()})
    smtp = {
        "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "NOTIFICATIONS_SMTP_PORT": str(sink.port),
        "NOTIFICATIONS_EMAIL_RATE_PER_SECOND": E2E_EMAIL_RATE,
        "NOTIFICATIONS_EMAIL_BURST": E2E_EMAIL_RATE,
        # The citizens' data keys are asked of the complaints service on its bench port.
        "NOTIFICATIONS_DATA_KEY_URLS": json.dumps({"complaints": f"http://127.0.0.1:{ports['complaints']}"}),
    }
    services = {
        "complaints": ServiceProcess(
            "services.complaints",
            {
                **bootstrap,
                "COMPLAINTS_DATABASE_URL": urls["complaints"],
                "COMPLAINTS_PORT": str(ports["complaints"]),
            },
            ports["complaints"],
        ),
        **{
            name: ServiceProcess(
                f"services.{name}",
                {
                    **bootstrap,
                    **_consumer_env(
                        name,
                        groups[name],
                        "complaints.events",
                        urls[name],
                        ports[name],
                        smtp if name == "notifications" else {},
                    ),
                },
                ports[name],
            )
            for name in groups
        },
    }
    view = await asyncpg.connect(urls["integration"])
    try:
        for service in services.values():
            await service.wait_ready()
        body = {**COMPLAINT, "reporter": {"nik": "3306061708900001", "email": "warga@example.com"}}
        url = f"http://127.0.0.1:{ports['complaints']}/complaints"
        # Warm up until both consumers have joined their groups and handled a complaint.
        async with httpx.AsyncClient(timeout=30) as client:
            (await client.post(url, json=body)).raise_for_status()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (  # noqa: ASYNC110 (polling other processes)
            await view.fetchval("SELECT count(*) FROM history") and sink.messages
        ):
            await asyncio.sleep(0.2)
        sink.clear()
        seen: dict[str, float] = {}
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_view(view, seen, stop))
        sampling = asyncio.create_task(services["notifications"].profile("e2e-notifications", seconds))
        result = await open_loop(url, rate, seconds, body, record="tracking_code")
        await sampling
        answered: dict[str, float] = result.pop("answered")
        # Let the pipeline finish what was accepted (bounded: a slow one is reported
        # with what arrived, and how much did not).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (  # noqa: ASYNC110 (polling other processes)
            len(answered.keys() - seen.keys()) or len(sink.messages) < len(answered)
        ):
            await asyncio.sleep(0.5)
        stop.set()
        await watcher
        mailed: dict[str, float] = {}
        for mail in sink.messages:
            found = CODE_IN_MAIL.search(mail.raw)
            if found:
                mailed.setdefault(found.group().decode(), mail.received_at.timestamp())
        view_ms = [(seen[c] - t) * 1000 for c, t in answered.items() if c in seen]
        mail_ms = [(mailed[c] - t) * 1000 for c, t in answered.items() if c in mailed]
        # Where the email's time goes: until the notification exists (relay, broker,
        # consumer) and from there to the sink (delivery worker, SMTP).
        rows = await _fetch(
            urls["notifications"],
            "SELECT tracking_code, extract(epoch FROM created_at) AS created,"
            " extract(epoch FROM delivered_at) AS delivered FROM notifications WHERE channel = 'email'",
        )
        created = {r["tracking_code"]: float(r["created"]) for r in rows}
        created_ms = [(created[c] - t) * 1000 for c, t in answered.items() if c in created]
        sending_ms = [(mailed[c] - created[c]) * 1000 for c in answered if c in created and c in mailed]
        hops = await _hops(infra.kafka_bootstrap, urls, groups, answered, {"view": seen, "email": mailed})
        return {
            "rate": rate,
            "seconds": seconds,
            "accepted": len(answered),
            "errors": result["errors"],
            "intake_p99_ms": result["p99_ms"],
            "view": {**_percentiles(view_ms), "missing": len(answered) - len(view_ms)},
            "email": {**_percentiles(mail_ms), "missing": len(answered) - len(mail_ms)},
            "email_parts": {
                "to_created": _percentiles(created_ms),
                "created_to_sink": _percentiles(sending_ms),
            },
            "hops": hops,
            "rss_mb": {name: round(s.rss_mb()) for name, s in services.items()},
        }
    finally:
        await view.close()
        for service in services.values():
            service.stop()
        sink.stop()


# Each hop of a filing's way, from the timestamps its rows and records carry (one
# machine, one clock): the 201; the record's timestamp, set when the relay hands it to
# the producer; the consumer's inbox row (`processed_at`: its batch transaction's
# start); for the email the notification's row (created in that batch, delivered_at).
# Measured from the 201 as the generator saw it: negative when the relay had the event
# before the answer reached the generator.
RELAY_HOP = "relay: 201 to the record handed to the producer (wake-up, read)"
HOPS = {
    "view": (
        (RELAY_HOP, "answered", "record"),
        ("broker: producer linger, the broker's append, the consumer's fetch wait", "record", "consumed"),
        (
            "the consumer's batch transaction, until the view shows it (polled every 20 ms)",
            "consumed",
            "arrived",
        ),
    ),
    "email": (
        (RELAY_HOP, "answered", "record"),
        ("broker: producer linger, the broker's append, the consumer's fetch wait", "record", "consumed"),
        ("delivery: batch transaction, the worker's claim (woken at commit), SMTP", "consumed", "arrived"),
    ),
}


async def _hops(
    bootstrap: str,
    urls: dict[str, str],
    groups: dict[str, str],
    answered: dict[str, float],
    arrived: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """Each path's hops (HOPS): percentiles of each and its share of the mean total
    (means add up where percentiles do not)."""
    filed = await _fetch(
        urls["complaints"], "SELECT event_id::text AS id, value FROM outbox WHERE event_type LIKE '%.filed.%'"
    )
    code_of = {r["id"]: json.loads(r["value"])["data"]["tracking_code"] for r in filed}
    record = {
        code_of[event["id"]]: at
        for event, at in await topic_events(bootstrap, "complaints.events")
        if event["id"] in code_of
    }
    found: dict[str, Any] = {}
    for path, consumer in (("view", "integration"), ("email", "notifications")):
        rows = await _fetch(
            urls[consumer], "SELECT event_id, extract(epoch FROM processed_at) AS at FROM inbox"
        )
        stamps = {
            "answered": answered,
            "record": record,
            "consumed": {code_of[r["event_id"]]: float(r["at"]) for r in rows if r["event_id"] in code_of},
            "arrived": arrived[path],
        }
        complete = [c for c in answered if all(c in s for s in stamps.values())]
        parts = [
            (name, [(stamps[end][c] - stamps[start][c]) * 1000 for c in complete])
            for name, start, end in HOPS[path]
        ]
        total = sum(sum(values) for _, values in parts) or 1.0
        found[path] = [
            {"hop": name, **_percentiles(values), "mean_ms": sum(values) / len(values) if values else None,
             "share": sum(values) / total}
            for name, values in parts
        ]  # fmt: skip
    return found


def hop_lines(results: dict[str, Any]) -> list[str]:
    """The latest.md section: where a filing's time goes on its way to the view and the
    email, per broker."""
    lines = []
    for kind, found in (results.get("brokers") or {}).items():
        hops = (found.get("end_to_end") or {}).get("hops")
        if not hops:
            continue
        e2e = found["end_to_end"]
        lines += [
            f"## End to end, hop by hop ({BROKER_LABELS[kind]}, {e2e['rate']} req/s for {e2e['seconds']:.0f} s)",
            "",
            "| path | hop | mean | p50 | p99 | share of the mean total |",
            "|---|---|---|---|---|---|",
            *[
                f"| {path} | {h['hop']} | {_ms(h.get('mean_ms'))} | {_ms(h.get('p50_ms'))} | {_ms(h.get('p99_ms'))} | "
                f"{h['share']:.0%} |"
                for path, parts in hops.items()
                for h in parts
            ],
            "",
        ]
    return lines


async def topic_events(bootstrap: str, topic: str) -> list[tuple[dict[str, Any], float]]:
    """Every CloudEvent on `topic` and its record's timestamp (seconds)."""
    found: list[tuple[dict[str, Any], float]] = []
    async with assigned_reader(bootstrap, [topic]) as (reader, partitions):
        if not partitions:
            return found
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                found += [(json.loads(r.value), r.timestamp / 1000) for r in records]
            if not batch and all([await reader.position(p) >= end[p] for p in partitions]):
                break
    return found


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def _watch_view(view: asyncpg.Connection, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Record when each code first appears in the view's history. One consumer applies
    batches one after another, so `seq` grows in commit order."""
    last = await view.fetchval("SELECT coalesce(max(seq), 0) FROM history")
    while not stop.is_set():
        rows = await view.fetch("SELECT seq, code FROM history WHERE seq > $1 ORDER BY seq", last)
        now = time.time()
        for row in rows:
            if row["code"]:
                seen.setdefault(row["code"], now)
            last = row["seq"]
        await asyncio.sleep(VIEW_POLL_SECONDS)


def _percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {"n": len(ordered), "p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": ordered[-1]}


# ----- 5. consumers ------------------------------------------------------------------------------


async def preload_topic(infra: Infrastructure, events: int) -> str:
    """A fresh topic holding `events` realistic complaint-filed events."""
    # Sealed as events before data keys were: with the notification service's own key, so
    # the bench measures consuming, not asking producers for keys.
    key = NotificationsSettings().contact_key.get_secret_value()
    topic = f"bench.consumers.{uuid.uuid4().hex[:6]}"
    await create_topics(infra.kafka_bootstrap, {topic: 6})
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        futures = []
        for i in range(events):
            # a contact the notification service can open
            value = sample_event(i, seal_contact(key, email=f"warga{i}@example.com"))
            futures.append(await producer.send(topic, value, key=uuid.uuid4().hex.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return topic


async def consume(
    infra: Infrastructure,
    name: str,
    topic: str,
    events: int,
    *,
    window: float,
    database_url: str | None = None,
    profile_as: str | None = None,
) -> dict[str, Any]:
    """Start service `name` as a new consumer group on `topic` and measure its rate from
    its first applied batch, over the whole topic or `window` seconds, whichever ends
    first (applied = rows in its inbox)."""
    group = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    await create_topics(infra.kafka_bootstrap, {f"{group}.dlq": 1})
    url = database_url or await _fresh_database(infra)
    port = free_port()
    # Up to the channel hand-off: deliveries are held, the notifications stay queued.
    extra = {"NOTIFICATIONS_DELIVERY_PAUSED": "true"} if name == "notifications" else {}
    service = ServiceProcess(
        f"services.{name}",
        {
            **infra.broker_env(),
            **_consumer_env(name, group, topic, url, port, extra),
        },
        port,
    )
    stop = asyncio.Event()
    sampler: asyncio.Task[None] | None = None
    try:
        await service.wait_ready()
        sampler = asyncio.create_task(service.sample_rss(stop))
        first_at = first_done = None
        first_cpu = 0.0
        deadline = time.monotonic() + 30 + window
        done = 0
        sampling: asyncio.Task[None] | None = None
        while time.monotonic() < deadline:
            done = await _inbox_count(url, group)
            if done and first_at is None:
                first_at, first_done, first_cpu = time.perf_counter(), done, service.cpu_seconds()
                if profile_as:
                    sampling = asyncio.create_task(service.profile(profile_as, min(10, window)))
            if done >= events or (first_at and time.perf_counter() - first_at > window):
                break
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - first_at if first_at else float("nan")
        rate = (done - (first_done or 0)) / seconds if first_at and seconds > 0 else 0.0
        # The consumer's own CPU time per event: steadier than the rate on a busy machine.
        cpu_us = (
            (service.cpu_seconds() - first_cpu) * 1e6 / max(1, done - (first_done or 0)) if first_at else 0.0
        )
        stop.set()
        await sampler
        result = {
            "applied": done, "seconds": seconds, "per_s": rate, "cpu_us_per_event": cpu_us,
            "rss_mb": service.peak_rss / 2**20,
        }  # fmt: skip
        if sampling is not None:
            await sampling
        return result
    finally:
        stop.set()
        service.stop()


# Events per second each consumer is to apply (notifications: up to the channel hand-off).
CONSUMER_TARGETS = {"integration": 15_000, "notifications": 5_000}


async def consumer_rates(infra: Infrastructure, topic: str, events: int, window: float) -> dict[str, Any]:
    """How fast the integration view (a rebuild from the topic) and the notification
    service (up to the channel hand-off: notifications created) work through `events`
    pre-loaded events."""
    # The same topic read raw in the same run: what each consumer's rate is a share of.
    raw = await raw_consume(infra.kafka_bootstrap, topic, events)
    results: dict[str, Any] = {"events": events, "raw_per_s": raw["per_s"]}
    print(f"  raw consume: {raw['per_s']:,.0f} events/s", flush=True)
    for name in ("integration", "notifications"):
        results[name] = await consume(
            infra, name, topic, events, window=window, profile_as=f"consumer-{name}"
        )
        results[name]["ratio_to_raw_consume"] = results[name]["per_s"] / raw["per_s"]
        print(
            f"  {name}: {results[name]['per_s']:,.0f} events/s ({results[name]['applied']} applied, "
            f"{results[name]['ratio_to_raw_consume']:.3f} of raw consume, "
            f"{results[name]['cpu_us_per_event']:.0f} µs CPU per event)",
            flush=True,
        )
    return results


# ----- report ------------------------------------------------------------------------------------


async def _fresh_database(infra: Infrastructure) -> str:
    admin = infra.admin_database_url or next(iter(infra.database_urls.values()))
    name = f"bench_{uuid.uuid4().hex[:10]}"
    await create_databases(admin, [name])
    return database_url_for(admin, name)


def _verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "MISSED"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _per_s(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


# (measure, where in a broker's results, how shown) for the broker comparison.
BROKER_MEASURES: tuple[tuple[str, tuple[str, ...], Callable[[float | None], str]], ...] = (
    ("Raw produce (msg/s)", ("baselines", "produce", "per_s"), _per_s),
    ("Raw consume (msg/s)", ("baselines", "consume", "per_s"), _per_s),
    ("Outbox relay drain (events/s)", ("relay", "per_s"), _per_s),
    ("201 → integration view, p50", ("end_to_end", "view", "p50_ms"), _ms),
    ("201 → integration view, p99", ("end_to_end", "view", "p99_ms"), _ms),
    ("201 → email in the SMTP sink, p50", ("end_to_end", "email", "p50_ms"), _ms),
    ("201 → email in the SMTP sink, p99", ("end_to_end", "email", "p99_ms"), _ms),
)


def _dig(found: dict[str, Any], path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return float(found)  # type: ignore[arg-type]


def broker_lines(results: dict[str, Any]) -> list[str]:
    """The broker comparison: each measure on every broker of the run, and Apache Kafka's
    figure over Tansu's (above 1: more per second, or a longer wait)."""
    brokers: dict[str, dict[str, Any]] = results.get("brokers") or {}
    if not brokers:
        return []
    both = {"kafka", "tansu"} <= set(brokers)
    head = ["measure", *(b["label"] for b in brokers.values()), *(["Kafka / Tansu"] if both else [])]
    rows = []
    for measure, path, shown in BROKER_MEASURES:
        values = {kind: _dig(b, path) for kind, b in brokers.items()}
        if all(v is None for v in values.values()):
            continue
        cells = [shown(v) for v in values.values()]
        if both:
            kafka, tansu = values["kafka"], values["tansu"]
            cells.append(f"{kafka / tansu:.2f}" if kafka is not None and tansu else "—")
        rows.append(f"| {measure} | {' | '.join(cells)} |")
    e2e = next((b["end_to_end"] for b in brokers.values() if "end_to_end" in b), None)
    at = f" End to end at {e2e['rate']} req/s for {e2e['seconds']:.0f} s." if e2e else ""
    return [
        "## Brokers: the same scenarios on each",
        "",
        "Producers set up as the services' (acks=all; the idempotent producer on Apache Kafka, "
        f"which Tansu lacks), every broker one node on this machine.{at}",
        "",
        f"| {' | '.join(head)} |",
        "|" + "---|" * len(head),
        *rows,
        "",
    ]


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, result, target, verdict) for the headline table."""
    b, r, i = results["baselines"], results["relay"], results["intake"]
    at500 = next((x for x in i["runs"] if x["rate"] == 500), None)
    cpu = [x["service_cpu_ms_per_request"] for x in i["runs"] if x.get("service_cpu_ms_per_request")]
    rows = [
        ("Raw aiokafka produce (CloudEvents)", f"{b['produce']['per_s']:,.0f} msg/s", "—", "baseline"),
        ("Raw aiokafka consume", f"{b['consume']['per_s']:,.0f} msg/s", "—", "baseline"),
        ("Raw asyncpg two-insert transactions", f"{b['postgres']['per_s']:,.0f} tx/s", "—", "baseline"),
        ("Outbox relay drain", f"{r['per_s']:,.0f} events/s", "≥ 15,000/s", _verdict(r["per_s"], 15_000)),
        ("Relay / raw produce", f"{r['ratio_to_raw_produce']:.2f}", "≥ 0.3", _verdict(r["ratio_to_raw_produce"], 0.3)),
        ("POST /complaints highest rate held", f"{i['highest_held_rps']:,} req/s", "≥ 1,000/s",
         _verdict(i["highest_held_rps"], 1000)),
        ("Held rate / raw PostgreSQL tx rate", f"{i['ratio_to_raw_pg']:.2f}" if i["ratio_to_raw_pg"] else "—", "—", ""),
        ("Complaints service CPU per request", f"{min(cpu):.2f} ms" if cpu else "—", "—", ""),
        ("p99 at 500 req/s", _ms(at500["p99_ms"]) if at500 else
         f"not reached (the ladder stopped at {i['runs'][-1]['rate']:.0f} req/s)" if i["runs"] else "not run", "≤ 50 ms",
         _verdict(at500["p99_ms"], 50, higher_is_better=False) if at500 else "MISSED"),
        ("Complaints service RSS idle / peak", f"{i['rss_idle_mb']:.0f} / {i['rss_peak_mb']:.0f} MB", f"≤ {MEMORY_BUDGET_MB} MB",
         _verdict(i["rss_peak_mb"], MEMORY_BUDGET_MB, higher_is_better=False)),
    ]  # fmt: skip
    for name, other in (results.get("intake_other") or {}).items():
        other_cpu = [
            x["service_cpu_ms_per_request"] for x in other["runs"] if x.get("service_cpu_ms_per_request")
        ]
        rows.append(
            (f"{other['endpoint']} ({name}) highest rate held",
             f"{other['highest_held_rps']:,} req/s ({min(other_cpu):.2f} ms CPU per request)" if other_cpu
             else f"{other['highest_held_rps']:,} req/s", "≥ 1,000/s", _verdict(other["highest_held_rps"], 1000))
        )  # fmt: skip
    rows += cost_rows(results)
    e2e, consumers = results.get("end_to_end"), results.get("consumers")
    if e2e:
        for key, label, target in (
            ("view", "integration view", 100),
            ("email", "email in the SMTP sink", 250),
        ):
            x = e2e[key]
            missing = f", {x['missing']} not arrived" if x.get("missing") else ""
            rows.append(
                (f"201 → {label}, p99 ({e2e['rate']} req/s for {e2e['seconds']:.0f} s)",
                 f"{_ms(x.get('p99_ms'))} (p50 {_ms(x.get('p50_ms'))}, n={x['n']}{missing})",
                 f"≤ {target} ms", _verdict(x.get("p99_ms"), target, higher_is_better=False))
            )  # fmt: skip
    codes = results.get("citizen_codes")
    if codes:
        for key, label in (("email", "email in the SMTP sink"), ("whatsapp", "WhatsApp in the gateway")):
            x = codes[key]
            rows.append(
                (f"one-time code → {label}, p99 ({codes['requests']} one after the other)",
                 f"{_ms(x.get('p99_ms'))} (p50 {_ms(x.get('p50_ms'))})", "≤ 1,000 ms",
                 _verdict(x.get("p99_ms"), 1000, higher_is_better=False))
            )  # fmt: skip
    if results.get("rush") or results.get("overload"):
        from bench.rush import overload_rows, rush_rows  # it uses this module's helpers

        rows += rush_rows(results["rush"]) if results.get("rush") else []
        rows += overload_rows(results["overload"]) if results.get("overload") else []
    if results.get("portal_pages"):
        from bench.portal_pages import portal_rows  # it uses this module's helpers

        rows += portal_rows(results["portal_pages"])
    if consumers:
        for name, target in CONSUMER_TARGETS.items():
            c = consumers[name]
            ratio = (
                f", {c['ratio_to_raw_consume']:.3f} of raw consume" if c.get("ratio_to_raw_consume") else ""
            )
            rows.append(
                (f"{name} consumer, {consumers['events']:,} pre-loaded events",
                 f"{c['per_s']:,.0f} events/s{ratio} (RSS {c['rss_mb']:.0f} MB)", f"≥ {target:,}/s",
                 _verdict(c["per_s"], target))
            )  # fmt: skip
    rss = [("complaints (intake)", i["rss_peak_mb"])]
    rss += [(f"{n} (intake)", o["rss_peak_mb"]) for n, o in (results.get("intake_other") or {}).items()]
    rss += (
        [(f"{n} (consuming)", consumers[n]["rss_mb"]) for n in ("integration", "notifications")]
        if consumers
        else []
    )
    rss += [(f"{n} (end to end)", v) for n, v in (e2e or {}).get("rss_mb", {}).items()]
    rss += [("health (rush)", results["rush"]["rss_peak_mb"])] if results.get("rush") else []
    rss += [(f"{n} (overload)", o["rss_peak_mb"]) for n, o in (results.get("overload") or {}).items()]
    if rss:
        worst = max(rss, key=lambda x: x[1])
        rows.append(("Largest service RSS seen", f"{worst[1]:.0f} MB ({worst[0]})", f"≤ {MEMORY_BUDGET_MB} MB",
                     _verdict(worst[1], MEMORY_BUDGET_MB, higher_is_better=False)))  # fmt: skip
    return rows


def cost_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Each intake endpoint's service CPU per request as a multiple of the reference's
    (bench/reference.py), both at the reference's rate in the same run."""
    ref = (results.get("reference") or {}).get("runs") or []
    if not ref or not ref[0].get("service_cpu_ms_per_request"):
        return []
    rate, base = ref[0]["rate"], ref[0]["service_cpu_ms_per_request"]
    rows = []
    for endpoint, runs in _intake_runs(results):
        cpu = next((x.get("service_cpu_ms_per_request") for x in runs if x["rate"] == rate), None)
        ratio = cpu / base if cpu else None
        rows.append(
            (f"{endpoint} service CPU per request / the reference's",
             f"{ratio:.1f}× ({cpu:.2f} ms / {base:.2f} ms at {rate:.0f} req/s)" if ratio else "not measured",
             f"≤ {COST_TARGET:.0f}×", _verdict(ratio, COST_TARGET, higher_is_better=False))
        )  # fmt: skip
    return rows


def _intake_runs(results: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(endpoint, runs) of every intake endpoint measured."""
    found = [("POST /complaints", results["intake"]["runs"])] if results.get("intake") else []
    return found + [(o["endpoint"], o["runs"]) for o in (results.get("intake_other") or {}).values()]


def write_report(results: dict[str, Any], out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    growth_points = results.get("growth") or {"intake": [], "integration": []}
    lines = [
        f"# Benchmark results ({results['profile']}, {results['started']})",
        "",
        f"Machine: {results['machine']}. Runtime: {results['infrastructure']}. "
        f"Whole run: {results.get('total_seconds', 0):.0f} s.",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        *[f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in summary_rows(results)],
        "",
        *broker_lines(results),
        "## HTTP intake (open loop, latency from the scheduled send time)",
        "",
        "| endpoint | offered req/s | achieved req/s | p50 | p99 | p99.9 | errors | service CPU per request |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {endpoint} | {x['rate']:.0f} | {x['achieved_rps']:.0f} | {_ms(x['p50_ms'])} | {_ms(x['p99_ms'])} | "
            f"{_ms(x['p999_ms'])} | {x['errors']} | {_ms(x.get('service_cpu_ms_per_request'))} |"
            for endpoint, runs in [
                *_intake_runs(results),
                *[(f"reference: {r['endpoint']}", r["runs"]) for r in [results.get("reference")] if r],
            ]
            for x in runs
        ],
        "",
        "## Growth (rows already in the tables)",
        "",
        "| rows | intake p50 | intake p99 | intake errors | integration view events/s |",
        "|---|---|---|---|---|",
        *[
            f"| {g['rows']:,} | {_ms(g['p50_ms'])} | {_ms(g['p99_ms'])} | {g['errors']} | {c['per_s']:,.0f} |"
            for g, c in zip(growth_points["intake"], growth_points["integration"], strict=False)
        ],
        "",
        f"Intake at {growth_points['intake'][0]['rate'] if growth_points['intake'] else '—'} req/s; "
        "integration view rate over the first events of the same pre-loaded topic.",
        "",
        *hop_lines(results),
        *_rush_lines(results),
        *_profile_lines(results.get("profiles") or {}),
        *results.get("notes", []),
    ]
    (out / "latest.md").write_text("\n".join(lines) + "\n")
    _plots(results, out)


README = ROOT / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(results: dict[str, Any], readme: Path = README) -> None:
    """Put the headline table of a full run between the README's bench markers, so the
    README always shows the latest figures against the targets, missed ones included."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    table = [
        f"Latest full run: {results['started']} on {results['machine']} "
        f"({results.get('total_seconds', 0):.0f} s). Details, intake ladders and growth: "
        "[bench/results/latest.md](bench/results/latest.md); what the figures mean and why the "
        "missed ones are missed: [docs/capacity.md](docs/capacity.md).",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_rows(results)],
    ]
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + README_START + "\n" + "\n".join(table) + "\n" + README_END + tail)


def _rush_lines(results: dict[str, Any]) -> list[str]:
    if not results.get("rush"):
        return []
    from bench.rush import rush_lines  # it uses this module's helpers

    return rush_lines(results["rush"])


def _profile_lines(profiles: dict[str, dict[str, list[tuple[str, float]]]]) -> list[str]:
    """With --profile: where each sampled process spent its time (py-spy)."""
    lines: list[str] = []
    for name, summary in profiles.items():
        lines += [f"### Profile: {name}", "", "| share of samples | frame (self) |", "|---|---|"]
        lines += [f"| {share:.1%} | `{frame}` |" for frame, share in summary["self"][:8]]
        lines.append("")
    return ["## Profiles (py-spy)", "", *lines] if lines else []


def _plots(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["intake"]["runs"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        ax.plot([r["rate"] for r in runs], [r[key] for r in runs], marker="o", label=label)
    ax.axhline(50, color="grey", linestyle="--", linewidth=0.8, label="p99 target at 500 req/s")
    ax.set(
        xlabel="offered load (req/s)",
        ylabel="latency (ms)",
        title="POST /complaints, open loop",
        yscale="log",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "intake_latency.png", dpi=100)
    plt.close(fig)

    growth_points = results.get("growth") or {}
    if growth_points.get("intake"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        rows = [g["rows"] for g in growth_points["intake"]]
        left.plot(rows, [g["p50_ms"] for g in growth_points["intake"]], marker="o", label="p50")
        left.plot(rows, [g["p99_ms"] for g in growth_points["intake"]], marker="o", label="p99")
        left.set(xscale="log", xlabel="complaints already stored", ylabel="latency (ms)",
                 title=f"Intake at {growth_points['intake'][0]['rate']} req/s")  # fmt: skip
        left.legend()
        right.plot(rows, [c["per_s"] for c in growth_points["integration"]], marker="o", color="#2a7")
        right.set(xscale="log", xlabel="items and history rows already stored", ylabel="events/s",
                  title="Integration view consumer", ylim=(0, None))  # fmt: skip
        fig.tight_layout()
        fig.savefig(out / "growth.png", dpi=100)
        plt.close(fig)

    b = results["baselines"]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = ["raw produce", "relay drain", "raw consume"]
    values = [b["produce"]["per_s"], results["relay"]["per_s"], b["consume"]["per_s"]]
    consumers = results.get("consumers")
    if consumers:
        names += ["integration view", "notifications"]
        values += [consumers["integration"]["per_s"], consumers["notifications"]["per_s"]]
    ax.bar(names, values, color=["#888", "#2a7", "#888", "#27a", "#27a"][: len(names)])
    ax.set(ylabel="events/s", title="Event paths vs the raw broker", yscale="log")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(out / "relay_vs_raw.png", dpi=100)
    plt.close(fig)


PHASES = (
    "baselines", "relay", "intake", "end_to_end", "citizen_codes", "consumers", "growth", "rush", "overload",
    "portal_pages",
)  # fmt: skip


async def main_async(profile: Profile, only: set[str], held_rate: float | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sinergi-bench-"))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results: dict[str, Any] = {
        "profile": profile.name,
        "started": started,
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.1f}",
        "notes": [
            "Load generator, services, broker and PostgreSQL share the same machine, so the",
            "generator's own CPU use is part of every figure.",
        ],
    }
    with (
        start_infrastructure(["postgres_bench"], topics(), work_dir=work, durable=True) as infra,
        contextlib.ExitStack() as others,
    ):
        results["infrastructure"] = (
            f"{infra.kind} (broker {infra.kafka_kind or infra.kind}, "
            f"PostgreSQL {infra.postgres_kind or infra.kind})"
        )
        # The intake needs the baselines (its ratio to raw PostgreSQL), which start the axis.
        brokers = await broker_axis(infra, work, others) if only & (BROKER_PHASES | {"intake"}) else {}
        per_broker: dict[str, dict[str, Any]] = {kind: {"label": BROKER_LABELS[kind]} for kind in brokers}
        results["brokers"] = per_broker
        if only & {"baselines", "relay", "intake"}:
            print("baselines…", flush=True)
            for kind, on in brokers.items():
                found = per_broker[kind]["baselines"] = await broker_baselines(on, profile.events)
                print(f"  {BROKER_LABELS[kind]}: produce {found['produce']['per_s']:,.0f}/s "
                      f"consume {found['consume']['per_s']:,.0f}/s", flush=True)  # fmt: skip
            postgres = await raw_postgres(await _fresh_database(infra), profile.pg_seconds)
            results["baselines"] = {**per_broker[next(iter(brokers))]["baselines"], "postgres": postgres}
            print(f"  pg {postgres['per_s']:,.0f} tx/s")
        if "relay" in only:
            print("outbox relay…", flush=True)
            for kind, on in brokers.items():
                relay = await relay_drain(on, profile.events)
                relay["ratio_to_raw_produce"] = (
                    relay["per_s"] / per_broker[kind]["baselines"]["produce"]["per_s"]
                )
                per_broker[kind]["relay"] = relay
                print(f"  {BROKER_LABELS[kind]}: relay {relay['per_s']:,.0f}/s "
                      f"({relay['ratio_to_raw_produce']:.2f} of raw produce)", flush=True)  # fmt: skip
            results["relay"] = per_broker[next(iter(brokers))]["relay"]
        if "intake" in only:
            print("HTTP intake…", flush=True)
            raw_pg = results["baselines"]["postgres"]["per_s"]
            results["reference"] = await intake(
                infra, (profile.cost_rate,), profile.rate_seconds, raw_pg, REFERENCE_INTAKE
            )
            results["intake"] = await intake(infra, profile.rates, profile.rate_seconds, raw_pg)
            if profile.other_rates:
                results["intake_other"] = {
                    target.service: await intake(
                        infra, profile.other_rates, profile.other_seconds, raw_pg, target
                    )
                    for target in (PERMITS_INTAKE, HEALTH_INTAKE)
                }
            for row in cost_rows(results):
                print("  " + " | ".join(row), flush=True)
        if "end_to_end" in only:
            # End to end at the target rate, or lower when the intake could not hold it:
            # half the rate it held alone, since here the two consumers, the SMTP sink and
            # the generator share the machine with it (above that the figure measures a
            # queue, not the pipeline's latency).
            held = results.get("intake", {}).get("highest_held_rps")
            e2e_rate = min(profile.e2e_rate, max(10, int(held) // 2) if held else profile.e2e_rate)
            print(f"end to end at {e2e_rate} req/s…", flush=True)
            for kind, on in brokers.items():
                e2e = per_broker[kind]["end_to_end"] = await end_to_end(on, e2e_rate, profile.e2e_seconds)
                print(f"  {BROKER_LABELS[kind]}: view p99 {e2e['view'].get('p99_ms', float('nan')):.0f} ms, "
                      f"email p99 {e2e['email'].get('p99_ms', float('nan')):.0f} ms", flush=True)  # fmt: skip
            results["end_to_end"] = per_broker[next(iter(brokers))]["end_to_end"]
            print("\n".join(hop_lines(results)), flush=True)
        if "citizen_codes" in only:
            from bench.citizen_codes import citizen_codes  # it uses this module's helpers

            print("one-time codes, request to arrival…", flush=True)
            codes = results["citizen_codes"] = await citizen_codes(infra)
            print(f"  email p99 {codes['email'].get('p99_ms', float('nan')):.0f} ms, "
                  f"WhatsApp p99 {codes['whatsapp'].get('p99_ms', float('nan')):.0f} ms", flush=True)  # fmt: skip
        if only & {"consumers", "growth"}:
            print(f"pre-loading {profile.events:,} events…", flush=True)
            topic = await preload_topic(infra, profile.events)
        if "consumers" in only:
            print("consumers…", flush=True)
            results["consumers"] = await consumer_rates(infra, topic, profile.events, profile.consumer_window)
        if "growth" in only and profile.growth_rows:
            print("growth…", flush=True)
            results["growth"] = await growth(infra, profile, topic)
        if only & {"rush", "overload"}:
            await rush_and_overload(infra, profile, only, results, held_rate)
        if "portal_pages" in only:
            from bench.portal_pages import portal_pages, portal_rows  # it uses this module's helpers

            print("portal pages: tracking and Layanan saya…", flush=True)
            results["portal_pages"] = await portal_pages(infra, profile.portal_seconds)
            for row in portal_rows(results["portal_pages"]):
                print("  " + " | ".join(row), flush=True)
    return results


async def rush_and_overload(
    infra: Infrastructure, profile: Profile, only: set[str], results: dict[str, Any], held_rate: float | None
) -> None:
    """The booking-window rush, then each intake endpoint offered twice its held rate."""
    from bench import rush  # it uses this module's helpers

    if "rush" in only:
        print(
            f"booking rush: {profile.rush_citizens:,} citizens in {profile.rush_seconds:.0f} s…", flush=True
        )
        results["rush"] = await rush.rush(infra, profile.rush_citizens, profile.rush_seconds)
        for row in rush.rush_rows(results["rush"]):
            print("  " + " | ".join(row), flush=True)
    if "overload" in only:
        held = rush.held_rates(results, held_rate)
        print(f"overload: twice the held rates {held}…", flush=True)
        results["overload"] = await rush.overload(infra, held, profile.overload_seconds)
        for row in rush.overload_rows(results["overload"]):
            print("  " + " | ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes")
    parser.add_argument(
        "--only",
        action="append",
        choices=PHASES,
        help="run only these phases (repeatable); the report is then printed, not saved",
    )
    parser.add_argument("--profile", action="store_true", help="sample the services under load with py-spy")
    parser.add_argument(
        "--held-rate",
        type=float,
        help="overload alone: the held rate of an endpoint neither this run nor bench/results/latest.json measured",
    )
    args = parser.parse_args()
    # The phases in other modules (bench.rush, bench.citizen_codes) import this one as
    # bench.run: they must see this run's settings (PROFILING) and collect into it.
    sys.modules.setdefault("bench.run", sys.modules[__name__])
    global PROFILING
    PROFILING = args.profile
    profile = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = asyncio.run(main_async(profile, set(args.only or PHASES), args.held_rate))
    results["total_seconds"] = time.perf_counter() - started
    results["profiles"] = PROFILE_SUMMARIES
    if args.only:
        print(json.dumps({k: v for k, v in results.items() if k in PHASES}, indent=2, default=str))
        return
    # A quick run never replaces the full run's figures that the README shows.
    out = RESULTS if profile is FULL else RESULTS / "quick"
    write_report(results, out)
    if profile is FULL:
        update_readme(results)
    print((out / "latest.md").read_text())
    print(f"total {results['total_seconds']:.0f} s; results in {out}")


if __name__ == "__main__":
    main()
