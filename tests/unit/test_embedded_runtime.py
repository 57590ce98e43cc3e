"""The embedded runtime starts real PostgreSQL and Tansu processes; these tests keep them short.

Why real processes: the point of the embedded runtime is that the servers behave like the real
ones (persistence across restarts, consumer-group commits, faults via SIGSTOP) and never outlive
the test run; fakes would prove none of that.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.runtime import (
    EmbeddedKafka,
    EmbeddedPostgres,
    create_databases,
    create_topics,
    free_port,
    start_infrastructure,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = (
    "SINERGI_KAFKA_BOOTSTRAP",
    "SINERGI_DATABASE_URL",
    "SINERGI_KAFKA_IDEMPOTENCE",
    "SINERGI_RUNTIME_KIND",
    "SINERGI_EMBEDDED_BROKER",
)


def _alive(pid: int) -> bool:
    """Alive and not a zombie (orphans are reparented to an init that may reap late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def kafka() -> Iterator[EmbeddedKafka]:
    broker = EmbeddedKafka()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_postgres_keeps_databases_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    pg = EmbeddedPostgres(data_dir, durable=False)
    pg.start()
    try:
        assert pg.running and pg.pid is not None
        assert pg.url("x") == f"postgresql://postgres@127.0.0.1:{pg.port}/x"
        await create_databases(pg.url(), ["svc_alpha", "svc_alpha"])
        await create_databases(pg.url(), ["svc_alpha"])  # idempotent
        conn = await asyncpg.connect(pg.url("svc_alpha"))
        try:
            assert await conn.fetchval("select 1") == 1
            await conn.execute("create table kept (v text); insert into kept values ('yes')")
        finally:
            await conn.close()

        # pause(): a frozen server does not answer; resume(): it does again.
        pg.pause()
        with pytest.raises((TimeoutError, OSError)):
            await asyncpg.connect(pg.url("svc_alpha"), timeout=0.5)
        pg.resume()
        conn = await asyncpg.connect(pg.url("svc_alpha"), timeout=5)
        await conn.close()

        # Two servers must never share a data directory.
        with pytest.raises(RuntimeError, match="already running"):
            EmbeddedPostgres(data_dir, durable=False).start()

        port = pg.port
        pg.restart()
        assert pg.port == port
    finally:
        pg.stop()
    assert not pg.running and pg.pid is None

    again = EmbeddedPostgres(data_dir, durable=False)
    again.start()
    try:
        conn = await asyncpg.connect(again.url("svc_alpha"))
        try:
            assert await conn.fetchval("select v from kept") == "yes"
        finally:
            await conn.close()
    finally:
        again.stop()
    assert (tmp_path / "postgres.log").exists()


async def test_postgres_starts_after_a_killed_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    pg = EmbeddedPostgres(data_dir, durable=False)
    pg.start()
    pid = pg.pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # no shutdown at all: postmaster.pid stays behind
    assert _wait_dead(pid)
    pg.stop()
    pid_file = data_dir / "postmaster.pid"
    assert pid_file.exists()
    # Worst case: the stale PID now belongs to an unrelated live process (here: init).
    lines = pid_file.read_text().splitlines()
    pid_file.write_text("\n".join(["1", *lines[1:]]) + "\n")

    again = EmbeddedPostgres(data_dir, durable=False)
    again.start()
    try:
        conn = await asyncpg.connect(again.url())
        try:
            assert await conn.fetchval("select 1") == 1
        finally:
            await conn.close()
    finally:
        again.stop()


async def test_kafka_produce_and_consume_with_group_commits(kafka: EmbeddedKafka) -> None:
    assert kafka.bootstrap == f"127.0.0.1:{kafka.port}"
    await create_topics(kafka.bootstrap, {"runtime.test": 3})
    await create_topics(kafka.bootstrap, {"runtime.test": 3})  # already exists: fine

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics(["runtime.test"])
        assert len(described["partitions"]) == 3
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait("runtime.test", f"v{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "runtime.test",
        bootstrap_servers=kafka.bootstrap,
        group_id="runtime-test",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # Tansu makes a new group's first join wait about half the session timeout.
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        received = []
        deadline = time.monotonic() + 30
        while len(received) < 10 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                received.extend(records)
        assert sorted(r.value for r in received) == sorted(f"v{i}".encode() for i in range(10))
        partitions_used = {r.partition for r in received}
        assert len(partitions_used) > 1
        await consumer.commit()
        committed = 0
        for p in range(3):
            committed += await consumer.committed(TopicPartition("runtime.test", p)) or 0
        assert committed == 10
    finally:
        await consumer.stop()


async def test_kafka_pause_blocks_and_resume_recovers(kafka: EmbeddedKafka) -> None:
    await create_topics(kafka.bootstrap, {"runtime.pause": 1})
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, enable_idempotence=False, request_timeout_ms=5000
    )
    await producer.start()
    try:
        await producer.send_and_wait("runtime.pause", b"before", key=b"k")
        kafka.pause()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(producer.send_and_wait("runtime.pause", b"during", key=b"k"), 1.0)
        finally:
            kafka.resume()
        meta = await asyncio.wait_for(producer.send_and_wait("runtime.pause", b"after", key=b"k"), 15)
        assert meta.offset >= 1
    finally:
        await producer.stop()


async def test_kafka_restart_keeps_port_but_loses_topics(kafka: EmbeddedKafka) -> None:
    await create_topics(kafka.bootstrap, {"runtime.volatile": 1})
    port, pid = kafka.port, kafka.pid
    kafka.restart()
    assert kafka.port == port and kafka.pid != pid and kafka.running
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        assert "runtime.volatile" not in await admin.list_topics()
    finally:
        await admin.close()
    kafka.kill()
    assert not kafka.running


def test_servers_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from shared.runtime import EmbeddedKafka, EmbeddedPostgres
        k = EmbeddedKafka(); k.start()
        pg = EmbeddedPostgres(Path({str(tmp_path / "pgdata")!r}), durable=False); pg.start()
        print(k.pid, pg.pid, flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        kafka_pid, pg_pid = (int(x) for x in line.split())
        assert _alive(kafka_pid) and _alive(pg_pid)
    finally:
        child.kill()
        child.wait()
    assert _wait_dead(kafka_pid), "Tansu outlived its SIGKILLed parent"
    assert _wait_dead(pg_pid), "PostgreSQL outlived its SIGKILLed parent"


def test_start_infrastructure_embedded_then_explicit(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SINERGI_RUNTIME_KIND", "embedded")
    with start_infrastructure(
        ["svc_one", "svc_two"], {"runtime.infra": 2}, work_dir=tmp_path, durable=False
    ) as infra:
        assert infra.kind == "embedded"
        assert infra.kafka_idempotence is False
        # What a service process started on it is told (make run, the benchmarks).
        assert infra.broker_env() == {
            "SINERGI_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "SINERGI_KAFKA_IDEMPOTENCE": "false",
        }
        assert infra.embedded_kafka is not None and infra.embedded_postgres is not None
        assert set(infra.database_urls) == {"svc_one", "svc_two"}

        async def check_embedded() -> None:
            for url in infra.database_urls.values():
                conn = await asyncpg.connect(url)
                await conn.close()
            admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
            await admin.start()
            try:
                assert "runtime.infra" in await admin.list_topics()
            finally:
                await admin.close()

        asyncio.run(check_embedded())

        # Explicit settings win and are only provisioned, never started or stopped.
        clean_env.setenv("SINERGI_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
        clean_env.setenv("SINERGI_DATABASE_URL", infra.embedded_postgres.url("postgres"))
        clean_env.setenv("SINERGI_KAFKA_IDEMPOTENCE", "false")
        with start_infrastructure(
            ["svc_three"], {"runtime.explicit": 1}, work_dir=tmp_path / "unused"
        ) as explicit:
            assert explicit.kind == "explicit"
            assert explicit.embedded_kafka is None and explicit.embedded_postgres is None
            assert explicit.kafka_idempotence is False
            assert explicit.database_urls["svc_three"] == infra.embedded_postgres.url("svc_three")

            async def check_explicit() -> None:
                conn = await asyncpg.connect(explicit.database_urls["svc_three"])
                await conn.close()

            asyncio.run(check_explicit())
        assert not (tmp_path / "unused").exists()
        assert infra.embedded_kafka.running and infra.embedded_postgres.running
        kafka_pid = infra.embedded_kafka.pid
        pg_pid = infra.embedded_postgres.pid
    assert kafka_pid is not None and pg_pid is not None
    assert _wait_dead(kafka_pid, 2) and _wait_dead(pg_pid, 2)
