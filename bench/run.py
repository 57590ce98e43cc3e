"""`make bench` / `make bench-quick`: throughput, latency and memory of every path, side
by side with the raw broker and raw PostgreSQL measured in the same run.

Everything runs on the embedded runtime (or explicit settings) started here on free
ports. Results: bench/results/latest.json, latest.md (the table the README links) and
PNG plots. Benchmarks report numbers; a missed target is reported as missed, never
turned into a test failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.kit.bus import EventBus
from shared.kit.db import connect, migrate
from shared.kit.metrics import KitMetrics
from shared.kit.outbox import OutboxRelay
from shared.kit.privacy import seal_contact
from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import create_databases, create_topics, free_port
from shared.runtime.select import Infrastructure, database_url_for, start_infrastructure
from shared.runtime.topology import topics
from shared.schemas import make_envelope
from shared.schemas.common import SealedContact
from shared.schemas.complaints import SOURCE, ComplaintFiled

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EMPTY_MIGRATIONS = ROOT / "bench" / "no_migrations"  # the kit's tables only

COMPLAINT = {
    "kind": "pengaduan",
    "category": "jalan_rusak",
    "title": "Jalan berlubang di depan balai desa",
    "description": "Lubang besar di jalan desa membahayakan pengendara motor.",
    "desa_code": "33.06.01.2001",
    "reporter": {"nik": "3306061708900001", "phone": "081234567890"},
}


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


FULL = Profile(
    "full",
    100_000,
    10,
    (100, 200, 300, 500, 1000, 1500, 2000),
    10,
    (10_000, 100_000, 1_000_000),
    100,
    200,
    60,
)
QUICK = Profile("quick", 10_000, 3, (100, 500), 3, (10_000,), 300, 50, 5)


def sample_event(i: int = 0) -> bytes:
    now = datetime.now(UTC)
    data = ComplaintFiled(
        complaint_id=str(uuid.uuid4()),
        tracking_code=f"ADU-2611-{i:06d}",
        status="submitted",
        kind="pengaduan",
        category="jalan_rusak",
        dimension="mobility",
        opd="DPUPR",
        desa_code="33.06.01.2001",
        kecamatan_code="33.06.01",
        citizen_ref="cr1_" + uuid.uuid4().hex,
        contact=SealedContact(sealed="gAAAAAB" + "x" * 120, channels=["sms", "whatsapp"]),
        title="Jalan berlubang di depan balai desa",
        filed_at=now,
        verify_due=now + timedelta(days=3),
        close_due=now + timedelta(days=84),
    )
    envelope = make_envelope(data, subject=data.complaint_id, source=SOURCE, region="33.06")
    return envelope.to_kafka().value


# ----- 1. baselines ------------------------------------------------------------------------


async def raw_produce(bootstrap: str, topic: str, n: int) -> dict[str, Any]:
    values = [sample_event(i) for i in range(n)]
    keys = [uuid.uuid4().hex.encode() for _ in range(n)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
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


# ----- 2. outbox relay -----------------------------------------------------------------------


async def relay_drain(infra: Infrastructure, platform_settings: PlatformSettings, n: int) -> dict[str, Any]:
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


class ServiceProcess:
    """A service started as its own process (as `make run` does), with RSS sampling."""

    def __init__(self, module: str, env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **env, "SINERGI_LOG_LEVEL": "WARNING"},
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

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    async def sample_rss(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss = max(self.peak_rss, psutil.Process(self.proc.pid).memory_info().rss)
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def open_loop(url: str, rate: int, seconds: float, body: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        body_file, out = Path(tmp) / "body.json", Path(tmp) / "out.json"
        body_file.write_text(json.dumps(body))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--url", url, "--rate", str(rate),
            "--duration", str(seconds), "--body-file", str(body_file), "--out", str(out), cwd=ROOT,
        )  # fmt: skip
        await proc.wait()
        return json.loads(out.read_text())


async def intake(
    infra: Infrastructure, profile: Profile, raw_pg_per_s: float, preload: Callable[[str], Any] | None = None
) -> dict[str, Any]:
    url = await _fresh_database(infra)
    port = free_port()
    service = ServiceProcess(
        "services.complaints",
        {
            "SINERGI_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "COMPLAINTS_DATABASE_URL": url,
            "COMPLAINTS_PORT": str(port),
        },
        port,
    )
    try:
        await service.wait_ready()
        if preload is not None:
            await preload(url)
        idle_rss = service.rss_mb()
        stop = asyncio.Event()
        sampler = asyncio.create_task(service.sample_rss(stop))
        runs = []
        for rate in profile.rates:
            result = await open_loop(
                f"http://127.0.0.1:{port}/complaints", rate, profile.rate_seconds, COMPLAINT
            )
            runs.append(result)
            print(f"  intake {rate:>5} req/s: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                  f"errors {result['errors']}", flush=True)  # fmt: skip
            if result["errors"] or result["p99_ms"] > 1000:
                break
        stop.set()
        await sampler
        held = [r for r in runs if not r["errors"] and r["p99_ms"] <= 1000]
        best = max((r["rate"] for r in held), default=0)
        return {
            "runs": runs,
            "highest_held_rps": best,
            "ratio_to_raw_pg": best / raw_pg_per_s if raw_pg_per_s else None,
            "rss_idle_mb": idle_rss,
            "rss_peak_mb": service.peak_rss / 2**20,
        }
    finally:
        service.stop()


# ----- 6. growth ---------------------------------------------------------------------------------


async def preload_complaints(url: str, rows: int) -> None:
    """Fill the complaints tables as if `rows` complaints had been filed and published."""
    conn = await connect(url)
    try:
        now = datetime.now(UTC)
        chunk = 50_000
        for offset in range(0, rows, chunk):
            batch = []
            for i in range(offset, min(rows, offset + chunk)):
                batch.append(
                    (
                        uuid.uuid4(), f"ADU-0001-{i:07d}"[:16], "pengaduan", "jalan_rusak", "mobility", "DPUPR",
                        "Jalan berlubang", "Lubang besar di jalan desa.", "33.06.01.2001", "33.06.01",
                        False, False, "submitted", now - timedelta(minutes=i),
                    )
                )  # fmt: skip
            await conn.copy_records_to_table(
                "complaints",
                records=batch,
                columns=[
                    "id", "tracking_code", "kind", "category", "dimension", "opd", "title", "description",
                    "desa_code", "kecamatan_code", "anonymous", "confidential", "status", "filed_at",
                ],
            )  # fmt: skip
        await conn.execute("ANALYZE complaints")
    finally:
        await conn.close()


async def growth(infra: Infrastructure, profile: Profile) -> list[dict[str, Any]]:
    points = []
    for rows in profile.growth_rows:
        single = Profile("growth", 0, 0, (profile.growth_rate,), profile.rate_seconds, (), 0, 0, 0)
        started = time.perf_counter()
        result = await intake(infra, single, 0, preload=lambda url, n=rows: preload_complaints(url, n))
        run = result["runs"][0]
        points.append(
            {"rows": rows, "rate": profile.growth_rate, "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
             "errors": run["errors"], "achieved_rps": run["achieved_rps"],
             "seconds_incl_preload": time.perf_counter() - started}
        )  # fmt: skip
        print(f"  growth {rows:>9} rows: p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms", flush=True)
    return points


# ----- 4. end to end ---------------------------------------------------------------------------------


def _filed_event(i: int, contact_key: str) -> bytes:
    """A realistic complaint-filed event whose sealed contact the notification service opens."""
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
        contact=seal_contact(contact_key, email=f"warga{i}@example.com"),
        title="Jalan berlubang di depan balai desa",
        filed_at=now,
        verify_due=now + timedelta(days=3),
        close_due=now + timedelta(days=84),
    )
    return make_envelope(data, subject=data.complaint_id, source=SOURCE, region="33.06").to_kafka().value


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


async def end_to_end(infra: Infrastructure, rate: int, seconds: float) -> dict[str, Any]:
    """Time from the 201 of POST /complaints to (a) the event applied in the integration
    view's database and (b) the email accepted by the SMTP sink."""
    from shared.runtime.smtp_sink import SmtpSink

    sink = SmtpSink(port=free_port()).start()
    bootstrap = {"SINERGI_KAFKA_BOOTSTRAP": infra.kafka_bootstrap}
    urls = {name: await _fresh_database(infra) for name in ("complaints", "notifications", "integration")}
    ports = {name: free_port() for name in urls}
    groups = {name: f"bench-{name}-{uuid.uuid4().hex[:6]}" for name in ("notifications", "integration")}
    await create_topics(infra.kafka_bootstrap, {f"{g}.dlq": 1 for g in groups.values()})
    smtp = {"NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "NOTIFICATIONS_SMTP_PORT": str(sink.port)}
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
    try:
        for service in services.values():
            await service.wait_ready()
        body = {**COMPLAINT, "reporter": {"nik": "3306061708900001", "email": "warga@example.com"}}
        url = f"http://127.0.0.1:{ports['complaints']}/complaints"
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=400)) as client:
            # Warm up until both consumers have joined their groups and applied an event.
            warm = await client.post(url, json=body)
            warm.raise_for_status()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (  # noqa: ASYNC110 (polling other processes)
                await _inbox_count(urls["integration"], groups["integration"])
                and sink.messages_to("warga@example.com")
            ):
                await asyncio.sleep(0.5)
            baseline = await _inbox_count(urls["integration"], groups["integration"])
            sink.clear()
            answered: dict[str, float] = {}
            errors = 0

            async def one(due: float) -> None:
                nonlocal errors
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                response = await client.post(url, json=body)
                if response.status_code == 201:
                    answered[response.json()["tracking_code"]] = time.time()
                else:
                    errors += 1

            start = time.monotonic() + 0.2
            total = int(rate * seconds)
            await asyncio.gather(*(one(start + i / rate) for i in range(total)))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            applied = await _inbox_count(urls["integration"], groups["integration"]) - baseline
            if applied >= len(answered) and len(sink.messages) >= len(answered):
                break
            await asyncio.sleep(0.5)
        view_ms = await _view_latencies(urls, groups["integration"], answered)
        mail_ms = []
        for mail in sink.messages:
            code = next((c for c in answered if c in mail.text), None)
            if code is not None:
                mail_ms.append((mail.received_at.timestamp() - answered[code]) * 1000)
        return {
            "rate": rate,
            "seconds": seconds,
            "accepted": len(answered),
            "errors": errors,
            "view": _percentiles(view_ms),
            "email": _percentiles(mail_ms),
        }
    finally:
        for service in services.values():
            service.stop()
        sink.stop()


async def _view_latencies(urls: dict[str, str], group: str, answered: dict[str, float]) -> list[float]:
    """Join the view's inbox (event id, applied at) with the complaints service's outbox
    (event id -> complaint) and complaints (complaint -> tracking code)."""
    complaints = await asyncpg.connect(urls["complaints"])
    view = await asyncpg.connect(urls["integration"])
    try:
        rows = await complaints.fetch(
            "SELECT o.event_id::text AS event_id, c.tracking_code FROM outbox o"
            " JOIN complaints c ON c.id::text = o.key WHERE o.event_type LIKE '%.filed.v1'"
        )
        code_of = {r["event_id"]: r["tracking_code"] for r in rows}
        applied = await view.fetch(
            "SELECT event_id, extract(epoch FROM processed_at) AS at FROM inbox WHERE consumer = $1", group
        )
    finally:
        await complaints.close()
        await view.close()
    latencies = []
    for r in applied:
        code = code_of.get(r["event_id"])
        if code in answered:
            latencies.append((float(r["at"]) - answered[code]) * 1000)
    return latencies


def _percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {"n": len(ordered), "p50_ms": at(50), "p99_ms": at(99), "max_ms": ordered[-1]}


# ----- 5. consumers ------------------------------------------------------------------------------


async def consumer_rates(infra: Infrastructure, events: int, window: float = 60.0) -> dict[str, Any]:
    """Pre-load `events` complaint events on a fresh topic, then measure how fast the
    integration view (a rebuild from the topic) and the notification service (up to
    the channel hand-off: notifications created) work through them."""
    key = PlatformSettings().contact_key.get_secret_value()
    topic = f"bench.consumers.{uuid.uuid4().hex[:6]}"
    await create_topics(infra.kafka_bootstrap, {topic: 6})
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        futures = []
        for i in range(events):
            value = _filed_event(i, key)
            futures.append(await producer.send(topic, value, key=uuid.uuid4().hex.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    results: dict[str, Any] = {"events": events}
    for name in ("integration", "notifications"):
        group = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        await create_topics(infra.kafka_bootstrap, {f"{group}.dlq": 1})
        url = await _fresh_database(infra)
        port = free_port()
        # Deliveries are not part of this measure: the SMTP port is closed on purpose.
        extra = {"NOTIFICATIONS_SMTP_PORT": str(free_port())} if name == "notifications" else {}
        service = ServiceProcess(
            f"services.{name}",
            {
                "SINERGI_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
                **_consumer_env(name, group, topic, url, port, extra),
            },
            port,
        )
        try:
            await service.wait_ready()
            first_at = None
            # The rate is measured over at most `window` seconds of work (the whole
            # pre-load when the consumer is fast enough).
            deadline = time.monotonic() + 20 + window
            done = 0
            while time.monotonic() < deadline:
                done = await _inbox_count(url, group)
                if done and first_at is None:
                    first_at, first_done = time.perf_counter(), done
                if done >= events or (first_at and time.perf_counter() - first_at > window):
                    break
                await asyncio.sleep(0.25)
            seconds = time.perf_counter() - first_at if first_at else float("nan")
            rate = (done - first_done) / seconds if first_at and seconds > 0 else 0.0
            results[name] = {"applied": done, "seconds": seconds, "per_s": rate, "rss_mb": service.rss_mb()}
            print(f"  {name}: {rate:,.0f} events/s ({done} applied)", flush=True)
        finally:
            service.stop()
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


def write_report(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    b, r, i = results["baselines"], results["relay"], results["intake"]
    at500 = next((x for x in i["runs"] if x["rate"] == 500), None)
    rows = [
        ("Raw aiokafka produce (CloudEvents)", f"{b['produce']['per_s']:,.0f} msg/s", "—", "baseline"),
        ("Raw aiokafka consume", f"{b['consume']['per_s']:,.0f} msg/s", "—", "baseline"),
        ("Raw asyncpg two-insert transactions", f"{b['postgres']['per_s']:,.0f} tx/s", "—", "baseline"),
        ("Outbox relay drain", f"{r['per_s']:,.0f} events/s", "≥ 15,000/s", _verdict(r["per_s"], 15_000)),
        ("Relay / raw produce", f"{r['ratio_to_raw_produce']:.2f}", "≥ 0.3", _verdict(r["ratio_to_raw_produce"], 0.3)),
        ("POST /complaints highest rate held", f"{i['highest_held_rps']:,} req/s", "≥ 1,000/s",
         _verdict(i["highest_held_rps"], 1000)),
        ("Held rate / raw PostgreSQL tx rate", f"{i['ratio_to_raw_pg']:.2f}" if i["ratio_to_raw_pg"] else "—", "—", ""),
        ("p99 at 500 req/s", f"{at500['p99_ms']:.1f} ms" if at500 else "not run", "≤ 50 ms",
         _verdict(at500["p99_ms"] if at500 else None, 50, higher_is_better=False)),
        ("Complaints service RSS idle / peak", f"{i['rss_idle_mb']:.0f} / {i['rss_peak_mb']:.0f} MB", "≤ 150 MB",
         _verdict(i["rss_peak_mb"], 150, higher_is_better=False)),
    ]  # fmt: skip
    e2e, consumers = results.get("end_to_end"), results.get("consumers")
    if e2e:
        view, mail = e2e["view"], e2e["email"]
        rows += [
            (f"201 → integration view, p99 ({e2e['rate']} req/s, {e2e['seconds']:.0f} s)",
             f"{view.get('p99_ms', float('nan')):.0f} ms (p50 {view.get('p50_ms', float('nan')):.0f}, n={view['n']})",
             "≤ 100 ms", _verdict(view.get("p99_ms"), 100, higher_is_better=False)),
            (f"201 → email in the SMTP sink, p99 ({e2e['rate']} req/s)",
             f"{mail.get('p99_ms', float('nan')):.0f} ms (p50 {mail.get('p50_ms', float('nan')):.0f}, n={mail['n']})",
             "≤ 250 ms", _verdict(mail.get("p99_ms"), 250, higher_is_better=False)),
        ]  # fmt: skip
    if consumers:
        for name, target in (("integration", 10_000), ("notifications", 3_000)):
            c = consumers[name]
            rows.append(
                (f"{name} consumer, {consumers['events']:,} pre-loaded events",
                 f"{c['per_s']:,.0f} events/s (RSS {c['rss_mb']:.0f} MB)", f"≥ {target:,}/s",
                 _verdict(c["per_s"], target))
            )  # fmt: skip
    lines = [
        f"# Benchmark results ({results['profile']}, {results['started']})",
        "",
        f"Machine: {results['machine']}. Runtime: {results['infrastructure']}.",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        *[f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in rows],
        "",
        "## HTTP intake (open loop, latency from the scheduled send time)",
        "",
        "| offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors |",
        "|---|---|---|---|---|---|",
        *[
            f"| {x['rate']} | {x['achieved_rps']:.0f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | "
            f"{x['p999_ms']:.1f} | {x['errors']} |"
            for x in i["runs"]
        ],
        "",
        "## Growth (intake latency with rows already in the tables)",
        "",
        "| rows | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
        *[
            f"| {g['rows']:,} | {g['rate']} | {g['p50_ms']:.1f} | {g['p99_ms']:.1f} | {g['errors']} |"
            for g in results["growth"]
        ],
        "",
        *results.get("notes", []),
    ]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    _plots(results)


def _plots(results: dict[str, Any]) -> None:
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
    fig.savefig(RESULTS / "intake_latency.png", dpi=100)
    plt.close(fig)

    growth_points = results["growth"]
    if growth_points:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(
            [g["rows"] for g in growth_points], [g["p50_ms"] for g in growth_points], marker="o", label="p50"
        )
        ax.plot(
            [g["rows"] for g in growth_points], [g["p99_ms"] for g in growth_points], marker="o", label="p99"
        )
        ax.set(xscale="log", xlabel="rows already in complaints", ylabel="latency (ms)",
               title=f"Intake at {growth_points[0]['rate']} req/s as data grows")  # fmt: skip
        ax.legend()
        fig.tight_layout()
        fig.savefig(RESULTS / "growth.png", dpi=100)
        plt.close(fig)

    b = results["baselines"]
    fig, ax = plt.subplots(figsize=(6, 4))
    names = ["raw produce", "relay drain", "raw consume"]
    values = [b["produce"]["per_s"], results["relay"]["per_s"], b["consume"]["per_s"]]
    ax.bar(names, values, color=["#888", "#2a7", "#888"])
    ax.set(ylabel="events/s", title="Outbox relay vs the raw broker")
    fig.tight_layout()
    fig.savefig(RESULTS / "relay_vs_raw.png", dpi=100)
    plt.close(fig)


async def main_async(profile: Profile) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sinergi-bench-"))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with start_infrastructure(["postgres_bench"], topics(), work_dir=work, durable=True) as infra:
        platform_settings = PlatformSettings(
            kafka_bootstrap=infra.kafka_bootstrap, kafka_idempotence=infra.kafka_idempotence
        )
        bench_topic = f"bench.{uuid.uuid4().hex[:8]}"
        await create_topics(infra.kafka_bootstrap, {bench_topic: 6})
        print("baselines…", flush=True)
        produce = await raw_produce(infra.kafka_bootstrap, bench_topic, profile.events)
        consume = await raw_consume(infra.kafka_bootstrap, bench_topic, profile.events)
        postgres = await raw_postgres(await _fresh_database(infra), profile.pg_seconds)
        print(
            f"  produce {produce['per_s']:,.0f}/s consume {consume['per_s']:,.0f}/s pg {postgres['per_s']:,.0f} tx/s"
        )
        print("outbox relay…", flush=True)
        relay = await relay_drain(infra, platform_settings, profile.events)
        relay["ratio_to_raw_produce"] = relay["per_s"] / produce["per_s"]
        print(f"  relay {relay['per_s']:,.0f}/s ({relay['ratio_to_raw_produce']:.2f} of raw produce)")
        print("HTTP intake…", flush=True)
        intake_result = await intake(infra, profile, postgres["per_s"])
        # End to end at the target rate, or at the highest rate the intake held if lower
        # (above it the figure would measure the intake's queue, not the pipeline).
        e2e_rate = min(profile.e2e_rate, intake_result["highest_held_rps"] or 50)
        print(f"end to end at {e2e_rate} req/s…", flush=True)
        e2e = await end_to_end(infra, e2e_rate, profile.e2e_seconds)
        print(f"  view p99 {e2e['view'].get('p99_ms', float('nan')):.0f} ms, "
              f"email p99 {e2e['email'].get('p99_ms', float('nan')):.0f} ms", flush=True)  # fmt: skip
        print("consumers…", flush=True)
        consumers = await consumer_rates(infra, profile.events)
        print("growth…", flush=True)
        growth_points = await growth(infra, profile)
        return {
            "profile": profile.name,
            "started": started,
            "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
            f"load average at start {os.getloadavg()[0]:.1f}",
            "infrastructure": f"{infra.kind} (broker {infra.kafka_kind or infra.kind}, "
            f"PostgreSQL {infra.postgres_kind or infra.kind})",
            "baselines": {"produce": produce, "consume": consume, "postgres": postgres},
            "relay": relay,
            "intake": intake_result,
            "growth": growth_points,
            "end_to_end": e2e,
            "consumers": consumers,
            "notes": [
                "Load generator, services, broker and PostgreSQL share the same machine, so the",
                "generator's own CPU use is part of every figure.",
            ],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about one minute")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = asyncio.run(main_async(profile))
    results["total_seconds"] = time.perf_counter() - started
    write_report(results)
    print((RESULTS / "latest.md").read_text())
    print(f"total {results['total_seconds']:.0f} s; results in {RESULTS}")


if __name__ == "__main__":
    main()
