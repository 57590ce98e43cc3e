"""Helpers for tests that run services against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from shared.kit.auth import issue_token
from shared.kit.consumer import behind, dead_letter_topic
from shared.kit.db import create_pool, migrate
from shared.kit.privacy import open_contact
from shared.kit.reader import assigned_reader
from shared.kit.settings import DEV_AUTH_SECRET, PlatformSettings
from shared.runtime.embedded import create_databases, create_topics
from shared.runtime.select import Infrastructure, database_url_for
from shared.schemas import CONTENT_TYPE, Envelope, ParsedEvent, parse_record
from shared.schemas.common import SealedContact
from tests.pii import scan_records


@asynccontextmanager
async def running(app: FastAPI, *, raise_app_exceptions: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan (pool, relay, consumers) and give an HTTP client to it.
    `raise_app_exceptions=False`: an unhandled error reaches the client as the service
    answers it (the kit's 500), as for a real client, instead of raising in the test."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll `predicate` (sync or async) until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def db_fetchval(url: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def db_execute(url: str, *statements: str) -> None:
    """Run `statements` one after the other on one connection (each its own transaction)."""
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


async def db_fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def read_topic(bootstrap: str, topic: str, timeout: float = 3.0) -> list[ConsumerRecord]:
    """Every record currently on `topic`, read with a plain aiokafka consumer (no group)
    (what was read by then if `timeout` runs out first)."""
    records: list[ConsumerRecord] = []
    async with assigned_reader(bootstrap, [topic]) as (consumer, partitions):
        if not partitions:  # no such topic (yet): Apache Kafka creates none on demand
            return []
        with contextlib.suppress(TimeoutError):
            async for batch in from_beginning(consumer, partitions, timeout):
                records.extend(batch)
    return records


async def from_beginning(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout: float
) -> AsyncIterator[list[ConsumerRecord]]:
    """The records of the assigned `partitions` from their beginning, batch by batch, up
    to their end offsets as asked now; TimeoutError when not caught up within `timeout`."""
    await consumer.seek_to_beginning(*partitions)
    end = await consumer.end_offsets(partitions)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        yield [record for records in batch.values() for record in records]
        # The embedded broker can report an end offset short of a multi-record batch,
        # so "caught up" also needs a poll that brings nothing.
        if not batch and not await behind(consumer, end):
            return
    raise TimeoutError(f"{len(partitions)} partitions not read to their end within {timeout} s")


def events_of(
    records: list[ConsumerRecord], **data_match: Any
) -> list[tuple[ConsumerRecord, dict[str, Any]]]:
    """(record, event JSON) for records whose event data has all of `data_match`."""
    found = []
    for record in records:
        try:
            event = json.loads(record.value)
        except (TypeError, ValueError):
            continue
        data = event.get("data") or {}
        if all(data.get(k) == v for k, v in data_match.items()):
            found.append((record, event))
    return found


async def published(
    bootstrap: str, topic: str, expected: int, **data_match: Any
) -> list[tuple[ConsumerRecord, dict[str, Any]]]:
    """The events on `topic` whose data has all of `data_match` (`events_of`), once at
    least `expected` of them have arrived; a relay publishes shortly after the commit."""

    async def enough() -> list[tuple[ConsumerRecord, dict[str, Any]]] | None:
        found = events_of(await read_topic(bootstrap, topic), **data_match)
        return found if len(found) >= expected else None

    return await wait_for(enough, timeout=20)


def officer_headers(
    role: str = "admin", *, opd: str | None = None, facility: str | None = None, subject: str = "test-officer"
) -> dict[str, str]:
    token = issue_token(DEV_AUTH_SECRET, subject=subject, role=role, opd=opd, facility=facility)
    return {"Authorization": f"Bearer {token}"}


SERVICE_LOG_DIR = Path(os.environ.get("SINERGI_TEST_LOG_DIR", "test-artifacts/service-logs"))


def service_log(proc: subprocess.Popen[bytes]) -> str:
    """Everything a service process started by `start_service_process` has logged."""
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def start_service_process(
    name: str, *, bootstrap: str, database_url: str, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `python -m services.<name>` as `make run` does, on its own port and database.
    Its log goes to a file in SERVICE_LOG_DIR (scanned for personal data at the end of
    the test session), readable with `service_log(proc)`."""
    prefix = name.upper()
    full_env = {
        **os.environ,
        "SINERGI_KAFKA_BOOTSTRAP": bootstrap,
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_PORT": str(port),
        "SINERGI_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    SERVICE_LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = SERVICE_LOG_DIR / f"{name}-{port}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=repo_root(),
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


async def wait_ready(
    base_url: str, proc: subprocess.Popen[bytes], timeout: float = 60, *, name: str = "service"
) -> None:
    """Wait until a process started by `start_service_process` answers /ready with 200;
    if it exits meanwhile, fail at once with the end of its log."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:

        async def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{service_log(proc)[-3000:]}")
            try:
                return (await client.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, timeout=timeout, interval=0.2)


async def new_database(infra: Infrastructure) -> str:
    """A new, empty database on the test PostgreSQL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = infra.admin_database_url or next(iter(infra.database_urls.values()))
    await create_databases(admin, [name])
    return database_url_for(admin, name)


@asynccontextmanager
async def migrated_pool(infra: Infrastructure, migrations: Path) -> AsyncIterator[asyncpg.Pool]:
    """A new database with a service's migrations, and a pool with the service's codecs."""
    url = await new_database(infra)
    await migrate(url, migrations)
    pool = await create_pool(url, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def migrated_pool_fixture(migrations: Path) -> Any:
    """A fixture giving each test that asks for it a pool on a new database with
    `migrations` applied (see `migrated_pool`). Bind it to one name per database a test
    needs: `one_by_one = batched = migrated_pool_fixture(MIGRATIONS)` gives two."""

    @pytest.fixture
    async def pool(infra: Infrastructure) -> AsyncIterator[asyncpg.Pool]:
        async with migrated_pool(infra, migrations) as created:
            yield created

    return pool


async def post_raw(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    """POST `body` as it is, declared JSON: what a client that sends broken or oversized
    JSON sends."""
    return await client.post(path, content=body, headers={"content-type": "application/json"})


def service_fixture(
    build: Callable[[Any], FastAPI],
    settings: Callable[..., Any],
    *,
    wrap: Callable[[FastAPI], FastAPI] | None = None,
    headers: Callable[[PlatformSettings], dict[str, str]] | None = None,
    **options: Any,
) -> Any:
    """A fixture running the service `build` makes of `settings(**options)` on a new
    database and the suite's platform (the app passed through `wrap`, the client sending
    `headers`); it gives (HTTP client, the service's use-case context, database URL):
    `complaints = service_fixture(build, ComplaintsSettings)`."""

    @pytest.fixture
    async def service(
        infra: Infrastructure, platform: PlatformSettings, fresh_database: str
    ) -> AsyncIterator[tuple[httpx.AsyncClient, Any, str]]:
        app = build(settings(database_url=fresh_database, platform=platform, **options))
        if wrap is not None:
            app = wrap(app)
        async with running(app) as client:
            if headers is not None:
                client.headers.update(headers(platform))
            yield client, app.state.service.context, fresh_database

    return service


class SteppingClock:
    """A service's clock a test sets: it starts at `at` and each reading is `step` later
    (what the service stamps stays in order, as with a real clock)."""

    def __init__(self, at: datetime, step: timedelta) -> None:
        self.at = at
        self.step = step

    def __call__(self) -> datetime:
        self.at += self.step
        return self.at


async def new_group(infra: Infrastructure, prefix: str, topics: Iterable[str]) -> str:
    """A new consumer group, `<prefix>-<random>`, with its dead-letter topic; its offsets
    are committed at the current end of `topics`, so a consumer started in it sees only
    what is published from now on (not what earlier tests left on shared topics)."""
    group = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await create_topics(infra.kafka_bootstrap, {dead_letter_topic(group): 1})
    async with assigned_reader(infra.kafka_bootstrap, topics, group_id=group) as (reader, partitions):
        if partitions:
            await reader.commit(await reader.end_offsets(partitions))
    return group


async def send_event(
    producer: AIOKafkaProducer, topic: str, envelope: Envelope, *, wait: bool = True
) -> None:
    """Publish one event as a service's outbox relay does: the whole CloudEvent as the
    value (structured mode), its subject as the key, the content-type header. With
    wait=False it is batched with the next ones until the producer is flushed."""
    sent = await producer.send(
        topic,
        envelope.to_kafka().value,
        key=envelope.subject.encode(),
        headers=[("content-type", CONTENT_TYPE.encode())],
    )
    if wait:
        await sent


def parsed(envelopes: Sequence[Envelope]) -> list[ParsedEvent]:
    """Events through the kit's own parser, as a consumer's handler receives them."""
    return [parse_record(e.to_kafka().value) for e in envelopes]


def metric(app: FastAPI, name: str, **labels: str) -> float:
    """A sample of a running service's metrics (kit or domain), 0 when not recorded yet."""
    return app.state.service.metrics.registry.get_sample_value(name, labels) or 0.0


@dataclass(frozen=True)
class Scrape:
    """A service's /metrics as Prometheus reads it."""

    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `name` with exactly `labels`; None when the service does not expose it."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        return found[0] if found else None

    def labels(self, name: str) -> list[dict[str, str]]:
        """The label sets of every sample named `name`."""
        return [s.labels for s in self.samples if s.name == name]


async def scrape(client: httpx.AsyncClient) -> Scrape:
    """GET /metrics of the service behind `client`, parsed."""
    response = await client.get("/metrics")
    response.raise_for_status()
    families = text_string_to_metric_families(response.text)
    return Scrape(tuple(sample for family in families for sample in family.samples))


@dataclass
class Served:
    """A domain service in this process on a fresh database: its client and context."""

    client: httpx.AsyncClient
    context: Any
    database_url: str


@asynccontextmanager
async def serve(app: FastAPI, database_url: str) -> AsyncIterator[Served]:
    """`app` running (see `running`), answering unhandled errors as a client sees them."""
    async with running(app, raise_app_exceptions=False) as client:
        yield Served(client, app.state.service.context, database_url)


async def opened_contact(ctx: Any, contact: dict[str, Any]) -> dict[str, str] | None:
    """A contact an event carries, opened with the data key the producing service (its
    use-case context `ctx`) keeps for the citizen; None once that key is destroyed."""
    sealed = SealedContact(**contact)
    assert sealed.key_id is not None, "a producer seals every contact with a data key"
    async with ctx.pool().acquire() as conn:
        key = await ctx.data_keys.key(conn, sealed.key_id)
    return None if key is None else open_contact(key, sealed)


async def every_topic(bootstrap: str, timeout: float = 300.0) -> list[tuple[str, list[ConsumerRecord]]]:
    """Every record of every topic but Kafka's own (dead-letter topics included), by topic.
    One reader takes every topic at once: a reader per topic cost a consumer's start and
    an empty fetch each, about a minute at the end of a session's hundreds of topics.
    TimeoutError when not everything was read within `timeout`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        # Apache Kafka's own topics (`__consumer_offsets`, `__transaction_state`) hold
        # offsets and transaction markers, not events.
        names = sorted(name for name in await consumer.topics() if not name.startswith("__"))
    finally:
        await consumer.stop()
    by_topic: dict[str, list[ConsumerRecord]] = {name: [] for name in names}
    async with assigned_reader(bootstrap, names) as (reader, partitions):
        if partitions:
            async for batch in from_beginning(reader, partitions, timeout):
                for record in batch:
                    by_topic[record.topic].append(record)
    return list(by_topic.items())


async def scan_every_topic(bootstrap: str, timeout: float = 300.0) -> list[str]:
    """Personal data found in any record (value or header) of any topic but Kafka's own.
    Not reading everything within `timeout` is a finding too, never a silent pass."""
    try:
        topics = await every_topic(bootstrap, timeout)
    except TimeoutError as exc:
        return [f"the bus was not scanned whole: {exc}"]
    problems: list[str] = []
    for name, records in topics:
        problems += scan_records(name, [r.value for r in records])
        problems += scan_records(name, [v for r in records for _, v in (r.headers or ())])
    return problems


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A small HTTP server on a free loopback port answering with `handler` (another
    party the test stands in for: a tile server, a misbehaving proxy); its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
