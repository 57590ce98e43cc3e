"""What the fault and load tests share: service processes, citizens at a steady rate,
exact counting of what reached the topics, the notification service and the
integration view, and the `Rig` a test gets them from.

Every service runs as its own process (`python -m services.<name>`, as `make run`
starts it) against the session's broker and PostgreSQL; each test gives its consumers
their own consumer groups (positioned at the current end of the topics) and databases,
so tests never see each other's effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import httpx
import psutil

from shared.kit.clock import utc_now
from shared.kit.privacy import citizen_ref
from shared.kit.settings import PlatformSettings
from shared.reference import default_calendar
from shared.runtime.dev_issuer import DevelopmentIssuer
from shared.runtime.embedded import create_databases, free_port
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure, database_url_for
from shared.runtime.smtp_sink import SmtpSink
from tests.harness import (
    db_fetch,
    new_group,
    officer_headers,
    read_topic,
    repo_root,
    service_log,
    start_service_process,
    wait_for,
    wait_ready,
)
from tests.integration.test_complaints_service import complaint_body
from tests.notifications_support import data_key_urls
from tests.pii import findings
from tests.practice_days import practice_days

GATEWAY_TOKEN = "test-gateway-token"
ADMIN = officer_headers("admin", subject="faults-admin")
NOTIFICATION_OFFICER = officer_headers("notification_officer", subject="faults-officer")

DOMAIN_TOPICS = {"complaints": "complaints.events", "permits": "permits.events", "health": "health.events"}
ALL_TOPICS = [*DOMAIN_TOPICS.values(), "notifications.events"]
# The event each citizen write produces, and the rule that notifies the citizen of it.
CREATED_TYPE = {
    "complaints": "id.sinergi.complaints.complaint.filed.v1",
    "permits": "id.sinergi.permits.application.submitted.v1",
    "health": "id.sinergi.health.appointment.booked.v1",
}
CODE = re.compile(r"[A-Z]{3}-\d{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}")

# Timing for every service process: quick group membership (a killed member's session
# expires in 6 s), a quick relay poll, quick consumer retries.
PROCESS_ENV = {
    "SINERGI_CONSUMER_SESSION_TIMEOUT_MS": "6000",
    "SINERGI_CONSUMER_HEARTBEAT_MS": "1000",
    "SINERGI_OUTBOX_POLL_SECONDS": "0.5",
    "SINERGI_CONSUMER_BACKOFF_SECONDS": "0.05",
}

FACILITY = "RSUD-TJITRO"
POLYCLINIC = "FLT"
NIK = "3306061708900001"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def new_database(infra: Infrastructure, prefix: str) -> str:
    admin = infra.admin_database_url or next(iter(infra.database_urls.values()))
    name = unique_name(prefix)
    await create_databases(admin, [name])
    return database_url_for(admin, name)


# ----- service processes -----------------------------------------------------------------------


@dataclass
class Stopped:
    exit_code: int | None
    seconds: float


@dataclass
class ServiceProcess:
    """One service as its own process. Each (re)start gets a new port, so each run keeps
    its own log file (SERVICE_LOG_DIR, scanned for personal data at the session's end)."""

    name: str
    bootstrap: str
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=timeout)

    async def start(self, *, ready: bool = True, timeout: float = 60.0) -> None:
        # The same port on a restart: the notification service asks the domain services
        # for data keys at the addresses it was given.
        self.port = self.port or free_port()
        self.proc = start_service_process(
            self.name,
            bootstrap=self.bootstrap,
            database_url=self.database_url,
            port=self.port,
            env={**PROCESS_ENV, **self.env},
        )
        self.starts += 1
        if ready:
            await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        await wait_ready(self.base, self.proc, timeout, name=self.name)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int | None:
        if not self.running:
            return None
        try:
            return psutil.Process(self.pid).memory_info().rss
        except psutil.Error:
            return None

    def log(self) -> str:
        return service_log(self.proc) if self.proc is not None else ""

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> Stopped:
        """Signal the process and wait for it to exit; SIGKILL if it outlives `timeout`."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return Stopped(proc.returncode if proc else None, 0.0)
        began = time.monotonic()
        proc.send_signal(sig)
        try:
            code = await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
            code = None
        return Stopped(code, time.monotonic() - began)

    def send(self, sig: signal.Signals) -> float:
        """Send `sig` without waiting; returns when (time.monotonic())."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return time.monotonic()

    async def exited(self, since: float, timeout: float = 40.0) -> Stopped:
        """Wait for the process to exit (SIGKILL after `timeout`); seconds counted from `since`."""
        assert self.proc is not None
        try:
            code = await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)
            code = None
        return Stopped(code, time.monotonic() - since)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    async def metrics(self) -> str:
        async with self.client(timeout=10) as client:
            return (await client.get("/metrics")).text

    async def run_command(self, *args: str, timeout: float = 90.0) -> str:
        """`python -m services.<name> <args>` with this service's settings (a maintenance
        command next to the running service, as an operator would run it)."""
        env = {
            **PROCESS_ENV,
            **self.env,
            "SINERGI_KAFKA_BOOTSTRAP": self.bootstrap,
            f"{self.name.upper()}_DATABASE_URL": self.database_url,
        }
        completed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", f"services.{self.name}", *args],
            cwd=repo_root(),
            env={**os.environ, **env},
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        output = completed.stdout.decode(errors="replace")
        assert completed.returncode == 0, output + completed.stderr.decode(errors="replace")[-3000:]
        return output


def metric_values(text: str, name: str, **labels: str) -> list[float]:
    """Every sample of `name` in Prometheus text whose labels include `labels`."""
    values = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            values.append(float(value))
    return values


def metric_sum(text: str, name: str, **labels: str) -> float:
    return sum(metric_values(text, name, **labels))


async def partitions_of(service: ServiceProcess) -> set[tuple[str, str]]:
    """The partitions an instance has applied batches from (its lag gauge has a label set
    per partition it consumed)."""
    found = set()
    for line in (await service.metrics()).splitlines():
        if line.startswith("sinergi_consumer_lag_messages{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            found.add((labels["topic"], labels["partition"]))
    return found


def notifications_process(
    infra: Infrastructure,
    database_url: str,
    group: str,
    smtp_sink: SmtpSink,
    fake_gateway: FakeGateway,
    *,
    key_holders: dict[str, str],
    **env: str,
) -> ServiceProcess:
    """The notification service on the session's SMTP sink and fake gateway, asking the
    domain services among `key_holders` (name -> base URL) for the citizens' data keys
    that open the contacts their events carry."""
    return ServiceProcess(
        "notifications",
        infra.kafka_bootstrap,
        database_url,
        {
            "NOTIFICATIONS_CONSUMER_GROUP": group,
            "NOTIFICATIONS_SMTP_HOST": smtp_sink.host,
            "NOTIFICATIONS_SMTP_PORT": str(smtp_sink.port),
            "NOTIFICATIONS_SMS_GATEWAY_URL": fake_gateway.sms_url,
            "NOTIFICATIONS_WHATSAPP_GATEWAY_URL": fake_gateway.whatsapp_url,
            "NOTIFICATIONS_GATEWAY_TOKEN": GATEWAY_TOKEN,
            "NOTIFICATIONS_DELIVERY_INTERVAL_SECONDS": "0.3",
            "NOTIFICATIONS_RETRY_BASE_SECONDS": "1",
            "NOTIFICATIONS_SENDING_LEASE_SECONDS": "15",
            "NOTIFICATIONS_EMAIL_RATE_PER_SECOND": "200",
            "NOTIFICATIONS_EMAIL_BURST": "200",
            "NOTIFICATIONS_WHATSAPP_RATE_PER_SECOND": "200",
            "NOTIFICATIONS_WHATSAPP_BURST": "200",
            "NOTIFICATIONS_SMS_RATE_PER_SECOND": "200",
            "NOTIFICATIONS_SMS_BURST": "200",
            **data_key_urls(key_holders),
            **env,
        },
    )


def integration_process(infra: Infrastructure, database_url: str, group: str, **env: str) -> ServiceProcess:
    return ServiceProcess(
        "integration",
        infra.kafka_bootstrap,
        database_url,
        {"INTEGRATION_CONSUMER_GROUP": group, "INTEGRATION_GAUGE_SECONDS": "3600", **env},
    )


@dataclass
class Consumers:
    """A notification service and an integration view of one test: own groups, own databases."""

    notifications: list[ServiceProcess]
    integration: list[ServiceProcess]
    notifications_group: str
    integration_group: str

    @property
    def notifications_db(self) -> str:
        return self.notifications[0].database_url

    @property
    def integration_db(self) -> str:
        return self.integration[0].database_url

    @property
    def all(self) -> list[ServiceProcess]:
        return [*self.notifications, *self.integration]

    async def start(self) -> None:
        for p in self.all:
            await p.start(ready=False)
        for p in self.all:
            await p.wait_ready()

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.all))


async def new_consumers(
    infra: Infrastructure,
    smtp_sink: SmtpSink,
    fake_gateway: FakeGateway,
    *,
    key_holders: dict[str, str],
    instances: int = 1,
    notifications_env: dict[str, str] | None = None,
    integration_env: dict[str, str] | None = None,
) -> Consumers:
    n_group = await new_group(infra, "notifications-faults", DOMAIN_TOPICS.values())
    i_group = await new_group(infra, "integration-faults", ALL_TOPICS)
    n_db = await new_database(infra, "notif")
    i_db = await new_database(infra, "integ")
    return Consumers(
        [
            notifications_process(
                infra,
                n_db,
                n_group,
                smtp_sink,
                fake_gateway,
                key_holders=key_holders,
                **(notifications_env or {}),
            )
            for _ in range(instances)
        ],
        [integration_process(infra, i_db, i_group, **(integration_env or {})) for _ in range(instances)],
        n_group,
        i_group,
    )


# ----- the producing services and their citizens -----------------------------------------------


@dataclass
class Producers:
    complaints: ServiceProcess
    permits: ServiceProcess
    health: ServiceProcess
    booking_days: list[date]
    # Signs the citizens' sessions bookings need; the health process verifies with its keys.
    issuer: DevelopmentIssuer

    def citizen(self, contact: str) -> dict[str, str]:
        """The session of the citizen who proved `contact`."""
        return self.issuer.session(PlatformSettings().citizen_ref_key.get_secret_value(), contact)

    @property
    def all(self) -> list[ServiceProcess]:
        return [self.complaints, self.permits, self.health]

    @property
    def urls(self) -> dict[str, str]:
        """Each producing service's base URL, by name."""
        return {p.name: p.base for p in self.all}

    def by_domain(self, domain: str) -> ServiceProcess:
        return {"complaints": self.complaints, "permits": self.permits, "health": self.health}[domain]

    async def outbox_pending(self) -> dict[str, int]:
        pending = {}
        for p in self.all:
            async with p.client() as client:
                pending[p.name] = (await client.get("/admin/outbox", headers=ADMIN)).json()["pending"]
        return pending


def booking_days(count: int = 20) -> list[date]:
    """Practice days from tomorrow on, without holidays (the test polyclinic works daily)."""
    calendar = default_calendar()
    return practice_days(calendar, calendar.local_date(utc_now()), count)


async def make_polyclinic(health: ServiceProcess) -> None:
    """A polyclinic with one doctor practising every day, 1000 + 1000 places a day."""
    officer = officer_headers("health_officer", facility=FACILITY, subject="faults-health")
    steps: list[tuple[str, dict[str, Any]]] = [
        (f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}", {"name": "Poli Uji Beban", "queue_prefix": "F"}),
        (
            f"/doctors/{POLYCLINIC}-D01",
            {"name": "dr. Uji Beban", "facility": FACILITY, "polyclinic": POLYCLINIC},
        ),
    ]
    steps += [
        (
            f"/doctors/{POLYCLINIC}-D01/schedules/{weekday}",
            {
                "start": "07:00",
                "end": "21:00",
                "minutes_per_patient": 1,
                "quota_jkn": 1000,
                "quota_non_jkn": 1000,
            },
        )
        for weekday in range(7)
    ]
    async with health.client() as client:
        for path, body in steps:
            response = await client.put(path, json=body, headers=officer)
            assert response.status_code == 200, (path, response.text)


@asynccontextmanager
async def running_producers(infra: Infrastructure) -> AsyncIterator[Producers]:
    """The three producing services as processes on `infra` (own databases), the test
    polyclinic made; stopped on the way out."""
    services = {}
    issuer = DevelopmentIssuer().start()
    for name in ("complaints", "permits", "health"):
        prefix = name.upper()
        services[name] = ServiceProcess(
            name,
            infra.kafka_bootstrap,
            await new_database(infra, name),
            {
                # No watcher events during the tests: only the citizens' writes publish.
                f"{prefix}_SLA_CHECK_SECONDS": "3600",
                f"{prefix}_EXPIRY_CHECK_SECONDS": "3600",
                f"{prefix}_NO_SHOW_CHECK_SECONDS": "3600",
                **issuer.env,
            },
        )
    for service in services.values():
        await service.start(ready=False)
    try:
        for service in services.values():
            await service.wait_ready()
        await make_polyclinic(services["health"])
        yield Producers(
            services["complaints"], services["permits"], services["health"], booking_days(), issuer
        )
    finally:
        await asyncio.gather(*(s.stop() for s in services.values()))
        issuer.stop()


def unique_email() -> str:
    return f"warga-{uuid.uuid4().hex[:12]}@example.com"


def _patient_niks() -> list[str]:
    """Valid, distinct NIKs (one kecamatan and birth date, serials 0001..9999), without
    the few whose citizen reference (32 hex digits) happens to contain 16 decimal digits
    that the suite's personal-data guard (tests/pii.py) would take for a NIK on the bus."""
    key = PlatformSettings().citizen_ref_key.get_secret_value()
    niks = (f"330606170890{n:04d}" for n in range(1, 10_000))
    return [nik for nik in niks if not findings(citizen_ref(nik, key))]


PATIENT_NIKS = _patient_niks()


def patient_nik(n: int) -> str:
    return PATIENT_NIKS[n % len(PATIENT_NIKS)]


def unique_phone(n: int) -> str:
    return f"+62812{n % 100_000_000:08d}"


@dataclass
class Outcome:
    accepted: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0  # clean refusals: 503 (or a closed listener)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


# One numbering for the whole session: a patient books one place per polyclinic and day.
_SERIAL = itertools.count(1)


class Citizens:
    """Citizens filing complaints, applications and bookings at steady rates (and, if
    asked, reading), recording every response. A request that is not 201 (or 200 for a
    read) nor a clean 503 is an error."""

    def __init__(
        self,
        producers: Producers,
        rates: dict[str, float],
        *,
        read_rate: float = 0.0,
        readers: list[tuple[ServiceProcess, str]] | None = None,
        max_in_flight: int = 64,
    ) -> None:
        self.producers = producers
        self.rates = rates
        self.read_rate = read_rate
        self.readers = readers or []
        self.outcomes = {domain: Outcome() for domain in rates}
        self.reads = Outcome()
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._loops: list[asyncio.Task[None]] = []
        self.started = 0.0
        self.stopped = 0.0
        self.late_ticks = 0

    def codes(self, domain: str) -> list[str]:
        return self.outcomes[domain].accepted

    @property
    def all_codes(self) -> dict[str, list[str]]:
        return {d: list(o.accepted) for d, o in self.outcomes.items()}

    @property
    def written(self) -> int:
        return sum(len(o.accepted) for o in self.outcomes.values())

    def errors(self) -> list[str]:
        return [e for o in [*self.outcomes.values(), self.reads] for e in o.errors]

    def start(self) -> None:
        self.started = time.monotonic()
        for domain, rate in self.rates.items():
            self._loops.append(asyncio.create_task(self._tick(rate, lambda d=domain: self._write(d))))
        if self.read_rate:
            self._loops.append(asyncio.create_task(self._tick(self.read_rate, self._read)))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._loops)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.stopped = time.monotonic()
        for client in self._clients.values():
            await client.aclose()

    @property
    def duration(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def _client(self, service: ServiceProcess) -> httpx.AsyncClient:
        key = service.base
        if key not in self._clients:
            self._clients[key] = httpx.AsyncClient(
                base_url=service.base,
                timeout=30,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            )
        return self._clients[key]

    async def _tick(self, rate: float, action: Any) -> None:
        """Start one action every 1/rate seconds, whatever the latency of earlier ones."""
        interval = 1.0 / rate
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stop.is_set():
            await self._slots.acquire()
            task = asyncio.create_task(self._guarded(action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += interval
            delay = next_at - loop.time()
            if delay < -1.0:
                self.late_ticks += 1
                next_at = loop.time()  # do not burst to catch up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, delay))

    async def _guarded(self, action: Any) -> None:
        try:
            await action()
        finally:
            self._slots.release()

    def _body(self, domain: str) -> tuple[str, dict[str, Any]]:
        n = next(_SERIAL)
        if domain == "complaints":
            body = complaint_body(reporter={"nik": NIK, "phone": "081234567890", "email": unique_email()})
            return "/complaints", body
        if domain == "permits":
            return "/applications", {
                "permit_type": "pbg",
                "applicant": {
                    "nik": NIK,
                    "name": "Budi Santoso",
                    "phone": "081234567890",
                    "email": unique_email(),
                },
                "desa_code": "33.06.01.2001",
                "details": {"building_function": "hunian", "building_area_m2": 120, "floors": 2},
                "documents": [
                    {"code": code, "ref": f"dms://{code}/1"}
                    for code in (
                        "ktp",
                        "bukti_tanah",
                        "krk",
                        "gambar_arsitektur",
                        "gambar_struktur",
                        "gambar_mep",
                    )
                ],
            }
        days = self.producers.booking_days
        return "/appointments", {
            "nik": patient_nik(n),  # one booking per patient, polyclinic and day
            "phone": unique_phone(n),
            "facility": FACILITY,
            "polyclinic": POLYCLINIC,
            "date": days[n % len(days)].isoformat(),
            "payment": "jkn" if n % 2 else "non_jkn",
            "jkn_card": "0001234567890" if n % 2 else None,
            "new_patient": False,
        }

    async def _write(self, domain: str) -> None:
        outcome = self.outcomes[domain]
        path, body = self._body(domain)
        client = self._client(self.producers.by_domain(domain))
        headers = self.producers.citizen(body["phone"]) if domain == "health" else None
        began = time.monotonic()
        try:
            response = await client.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:
            outcome.errors.append(f"{domain}: {type(exc).__name__}")
            return
        outcome.latencies.append(time.monotonic() - began)
        outcome.statuses[response.status_code] += 1
        if response.status_code == 201:
            data = response.json()
            outcome.accepted.append(data.get("tracking_code") or data["booking_code"])
        elif response.status_code == 503:
            outcome.refused += 1
        else:
            outcome.errors.append(f"{domain}: {response.status_code} {response.text[:200]}")

    async def _read(self) -> None:
        """A citizen looks up something filed earlier; a dashboard or officer list is read."""
        n = next(_SERIAL)
        targets: list[tuple[ServiceProcess, str]] = []
        for domain, path in (
            ("complaints", "/complaints/{}"),
            ("permits", "/applications/{}"),
            ("health", "/appointments/{}"),
        ):
            codes = self.outcomes[domain].accepted if domain in self.outcomes else []
            if codes:
                targets.append((self.producers.by_domain(domain), path.format(codes[n % len(codes)])))
        targets += self.readers
        if not targets:
            return
        service, path = targets[n % len(targets)]
        client = self._client(service)
        headers = NOTIFICATION_OFFICER if path.startswith("/notifications") else None
        began = time.monotonic()
        try:
            response = await client.get(path, headers=headers)
        except httpx.TransportError as exc:
            self.reads.errors.append(f"GET {path}: {type(exc).__name__}")
            return
        self.reads.latencies.append(time.monotonic() - began)
        self.reads.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.reads.accepted.append(path)
        else:
            self.reads.errors.append(f"GET {path}: {response.status_code} {response.text[:200]}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----- exact counting --------------------------------------------------------------------------


async def events_per_code(bootstrap: str, codes: dict[str, list[str]]) -> tuple[Counter[str], Counter[str]]:
    """Per code, on its domain topic: the records of its creation event (raw, nothing
    deduplicated) and the distinct events among them (distinct event ids)."""
    records: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    for domain, domain_codes in codes.items():
        wanted = set(domain_codes)
        for record in await read_topic(bootstrap, DOMAIN_TOPICS[domain], timeout=30):
            try:
                event = json.loads(record.value)
            except (TypeError, ValueError):
                continue
            if not isinstance(event, dict) or event.get("type") != CREATED_TYPE[domain]:
                continue
            data = event.get("data") or {}
            code = data.get("tracking_code") or data.get("booking_code")
            if code in wanted:
                records[code] += 1
                ids.setdefault(code, set()).add(event["id"])
    return records, Counter({code: len(found) for code, found in ids.items()})


def sent_per_code(smtp_sink: SmtpSink, fake_gateway: FakeGateway, codes: Iterable[str]) -> Counter[str]:
    """Messages that left the notification service per code: emails accepted by the SMTP
    sink plus SMS/WhatsApp messages the gateway accepted."""
    wanted = set(codes)
    counts: Counter[str] = Counter()
    for mail in smtp_sink.messages:
        for code in set(CODE.findall(mail.subject)):
            if code in wanted:
                counts[code] += 1
    for request in fake_gateway.requests:
        if 200 <= request.status < 300:
            for code in set(CODE.findall(request.message or "")):
                if code in wanted:
                    counts[code] += 1
    return counts


async def notification_rows(database_url: str, codes: list[str]) -> dict[str, list[str]]:
    """Statuses of the notification service's rows per code."""
    rows = await db_fetch(
        database_url,
        "SELECT tracking_code, status FROM notifications WHERE tracking_code = ANY($1::text[])",
        codes,
    )
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r["tracking_code"], []).append(r["status"])
    return found


async def view_counts(database_url: str, codes: list[str]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Integration view, per code: item rows, history rows of the creation event, and
    notification rows (from notifications.events)."""
    items = await db_fetch(database_url, "SELECT code FROM items WHERE code = ANY($1::text[])", codes)
    history = await db_fetch(
        database_url,
        "SELECT code FROM history WHERE code = ANY($1::text[]) AND event_type = ANY($2::text[])",
        codes,
        list(CREATED_TYPE.values()),
    )
    notes = await db_fetch(
        database_url,
        "SELECT code FROM notifications WHERE code = ANY($1::text[]) AND status = 'delivered'",
        codes,
    )
    return (
        Counter(r["code"] for r in items),
        Counter(r["code"] for r in history),
        Counter(r["code"] for r in notes),
    )


@dataclass
class Tally:
    """Per code, everything downstream of one accepted write (exact counts)."""

    codes: list[str]  # the writes tallied, every domain's
    on_topic: Counter[str]  # distinct events (event ids)
    records: Counter[str]  # raw records: a relay that lost an acknowledgement sends again
    notifications: Counter[str]
    delivered: int
    sent: Counter[str]
    items: Counter[str]
    history: Counter[str]
    view_notifications: Counter[str]

    @property
    def applied(self) -> dict[str, Counter[str]]:
        """What a write's event does downstream, per code: each must happen once (a
        message sent is apart: it may leave again where the worker cannot know)."""
        return {
            "notifications": self.notifications,
            "view items": self.items,
            "view history": self.history,
            "view notifications": self.view_notifications,
        }

    @property
    def reached(self) -> dict[str, Counter[str]]:
        """Every place a write must reach exactly once, per code."""
        return {"events on topic": self.on_topic, "messages sent": self.sent, **self.applied}

    @property
    def writes(self) -> int:
        return len(self.codes)

    def problems(self, attempts: Counter[str] | None = None) -> list[str]:
        """Every code whose count anywhere is not exactly one. With `attempts` (send
        attempts per code), a message may have left once per attempt: a worker killed
        between the relay's acceptance and recording it cannot know (at-least-once)."""
        found = []
        for name, counter in self.reached.items():
            wrong = {c: counter.get(c, 0) for c in self.codes if counter.get(c, 0) != 1}
            if counter is self.sent and attempts is not None:
                wrong = {c: n for c, n in wrong.items() if not 1 <= n <= attempts.get(c, 1)}
            if wrong:
                found.append(f"{name}: {len(wrong)} codes not exactly once, e.g. {list(wrong.items())[:5]}")
        return found

    @property
    def copies(self) -> int:
        """Records on the topics beyond one per event: the same event id sent again."""
        return sum(self.records.values()) - sum(self.on_topic.values())

    def summary(self) -> str:
        return (
            f"events on topics {sum(self.on_topic.values())} distinct ({sum(self.records.values())} records,"
            f" {self.copies} resent copies of the same event id), notifications"
            f" {sum(self.notifications.values())} (delivered {self.delivered}, messages sent"
            f" {sum(self.sent.values())}, sent twice {self.resent()}), view items {sum(self.items.values())}, view history"
            f" {sum(self.history.values())}, view notifications {sum(self.view_notifications.values())};"
            f" lost {self.lost()}, doubled {self.doubled()}"
        )

    def resent(self) -> int:
        return sum(max(0, self.sent.get(c, 0) - 1) for c in self.codes)

    def lost(self) -> int:
        """Codes missing somewhere they must have reached."""
        return sum(1 for c in self.codes if min(counter.get(c, 0) for counter in self.reached.values()) == 0)

    def doubled(self) -> int:
        """Codes with an effect applied more than once (a notification created twice, a
        view row twice); a message sent twice is counted apart (`resent`)."""
        return sum(1 for c in self.codes if max(counter.get(c, 0) for counter in self.applied.values()) > 1)


async def tally(
    infra: Infrastructure,
    consumers: Consumers,
    smtp_sink: SmtpSink,
    fake_gateway: FakeGateway,
    codes: dict[str, list[str]],
    *,
    timeout: float = 90.0,
    settle: float = 3.0,
) -> Tally:
    """Wait until every code is notified (delivered) and in the view, let late
    duplicates show up for `settle` seconds, then count everything exactly."""
    flat = [c for cs in codes.values() for c in cs]

    async def complete() -> bool:
        rows = await notification_rows(consumers.notifications_db, flat)
        delivered = sum(1 for c in flat if "delivered" in rows.get(c, []))
        items, history, notes = await view_counts(consumers.integration_db, flat)
        sent = sent_per_code(smtp_sink, fake_gateway, flat)
        return (
            delivered == len(flat)
            and all(items.get(c) for c in flat)
            and all(history.get(c) for c in flat)
            and all(notes.get(c) for c in flat)
            and all(sent.get(c) for c in flat)
        )

    # On a timeout, count what is there: the assertions name what is missing.
    with contextlib.suppress(TimeoutError):
        await wait_for(complete, timeout=timeout, interval=1.0)
    await asyncio.sleep(settle)
    rows = await notification_rows(consumers.notifications_db, flat)
    items, history, notes = await view_counts(consumers.integration_db, flat)
    records, on_topic = await events_per_code(infra.kafka_bootstrap, codes)
    return Tally(
        codes=flat,
        on_topic=on_topic,
        records=records,
        notifications=Counter({c: len(s) for c, s in rows.items()}),
        delivered=sum(1 for c in flat if "delivered" in rows.get(c, [])),
        sent=sent_per_code(smtp_sink, fake_gateway, flat),
        items=items,
        history=history,
        view_notifications=notes,
    )


# ----- a test's rig ----------------------------------------------------------------------------


def every_domain(rate: float) -> dict[str, float]:
    """Citizens' rates: `rate` writes per second to each producing service."""
    return dict.fromkeys(DOMAIN_TOPICS, rate)


@dataclass
class Rig:
    """What every fault test runs on: the session's broker and PostgreSQL, the producing
    services, and where the notification service's messages go."""

    infra: Infrastructure
    producers: Producers
    smtp_sink: SmtpSink
    fake_gateway: FakeGateway

    @asynccontextmanager
    async def consumers(self, *, instances: int = 1) -> AsyncIterator[Consumers]:
        """The test's own consumers (`instances` of each service), started; stopped on the
        way out, whatever happened."""
        consumers = await new_consumers(
            self.infra,
            self.smtp_sink,
            self.fake_gateway,
            key_holders=self.producers.urls,
            instances=instances,
        )
        try:
            await consumers.start()
            yield consumers
        finally:
            await consumers.stop()

    @asynccontextmanager
    async def citizens(self, rates: dict[str, float], **options: Any) -> AsyncIterator[Citizens]:
        """Citizens writing at `rates` once the test starts them (`Citizens` takes the
        options); stopped on the way out if the test has not stopped them."""
        citizens = Citizens(self.producers, rates, **options)
        try:
            yield citizens
        finally:
            if not citizens.stopped:
                await citizens.stop()

    async def tally(self, consumers: Consumers, codes: dict[str, list[str]]) -> Tally:
        """Everything downstream of `codes`, counted exactly (see `tally`)."""
        return await tally(self.infra, consumers, self.smtp_sink, self.fake_gateway, codes)

    async def every_write_once(self, consumers: Consumers, citizens: Citizens, settle: float = 3.0) -> Tally:
        """The citizens stopped after `settle` more seconds; every write must have been
        accepted (201) and must reach every place exactly once."""
        await asyncio.sleep(settle)
        await citizens.stop()
        assert citizens.errors() == []
        for domain, outcome in citizens.outcomes.items():
            assert set(outcome.statuses) == {201}, (domain, outcome.statuses)
        result = await self.tally(consumers, citizens.all_codes)
        assert result.problems() == []
        return result


@asynccontextmanager
async def batch_held(database_url: str, table: str) -> AsyncIterator[tuple[asyncpg.Connection, int]]:
    """Hold a consumer's batch transaction open: lock `table` (which the batch writes to)
    and wait until a transaction blocks on it; the lock goes when the block exits. Yields
    the locking connection (it sees committed rows) and the number of blocked backends."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

            async def blocked() -> int:
                # Activity is a snapshot per transaction: take a fresh one each time.
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                return await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND state = 'active' AND query LIKE $1",
                    f"INSERT INTO {table} %",
                )

            yield conn, await wait_for(blocked, timeout=30, interval=0.1)
    finally:
        await conn.close()


async def send_attempts(database_url: str, codes: list[str]) -> Counter[str]:
    """Per code, how often the notification service started sending (history rows
    `sending`): a worker killed mid-send leaves a lease; once it expires the attempt is
    retried, and the first one may have reached the relay (at-least-once delivery)."""
    rows = await db_fetch(
        database_url,
        "SELECT n.tracking_code, count(*) AS n FROM notification_history h"
        " JOIN notifications n ON n.id = h.notification_id"
        " WHERE n.tracking_code = ANY($1::text[]) AND h.status = 'sending' GROUP BY 1",
        codes,
    )
    return Counter({r["tracking_code"]: r["n"] for r in rows})


async def consumer_lag(service: ServiceProcess, group: str) -> float:
    return metric_sum(await service.metrics(), "sinergi_consumer_lag_messages", consumer=group)
