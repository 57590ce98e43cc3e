"""Choose and start the infrastructure (Kafka-protocol broker + PostgreSQL) for a run or a test.

Why: the same code must run on a developer laptop with Docker, on CI without Docker, and against
servers someone already runs. The selection order, for the broker and for PostgreSQL each on its
own, is:

1. explicit settings from the environment: ``SINERGI_KAFKA_BOOTSTRAP`` (``host:port[,...]``) and
   ``SINERGI_DATABASE_URL`` (a server/admin URL such as ``postgresql://u:p@host:5432/postgres``;
   each service database is that URL with the database name replaced);
2. otherwise, when a Docker engine answers, testcontainers (Apache Kafka in KRaft mode and
   PostgreSQL);
3. otherwise an embedded broker and PostgreSQL 18 (``shared.runtime.embedded``), keeping
   their data under ``work_dir``. The broker is ``SINERGI_EMBEDDED_BROKER``: ``tansu`` (the
   default: one static binary, ready in a fraction of a second, in memory) or ``kafka``
   (Apache Kafka from its jars, ``shared.runtime.apache_kafka``: the production engine, with
   the idempotent producer, ready in about 6 s).

``SINERGI_RUNTIME_KIND=embedded|testcontainers|auto`` skips the Docker probe for step 2/3.
``SINERGI_KAFKA_IDEMPOTENCE`` overrides whether producers may use the idempotent producer
(default: on for a real Kafka, always off for Tansu, which does not support it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.runtime.apache_kafka import ApacheKafka
from shared.runtime.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    _run_coroutine_sync,
    create_databases,
    create_topics,
)

__all__ = [
    "Infrastructure",
    "database_url_for",
    "docker_available",
    "embedded_kafka_broker",
    "start_infrastructure",
]

logger = logging.getLogger(__name__)

ENV_KAFKA_BOOTSTRAP = "SINERGI_KAFKA_BOOTSTRAP"
ENV_DATABASE_URL = "SINERGI_DATABASE_URL"
ENV_KAFKA_IDEMPOTENCE = "SINERGI_KAFKA_IDEMPOTENCE"
ENV_RUNTIME_KIND = "SINERGI_RUNTIME_KIND"
ENV_EMBEDDED_BROKER = "SINERGI_EMBEDDED_BROKER"
EMBEDDED_BROKERS = ("tansu", "kafka")
#: Whether a broker has the idempotent producer: Apache Kafka has, Tansu has not. A broker
#: given explicitly or run by testcontainers is an Apache Kafka.
IDEMPOTENT_PRODUCER = {"tansu": False, "kafka": True}

#: Images used when Docker is available. Kafka in KRaft mode (no ZooKeeper) starts faster;
#: PostgreSQL matches the embedded major version.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_IMAGE = "postgres:18-alpine"

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


@dataclass
class Infrastructure:
    """What a run talks to: where the broker is, one URL per database, and how it was provided.

    ``kind`` is ``"explicit"`` when both broker and PostgreSQL came from the environment,
    otherwise the kind of what this process started (``"testcontainers"`` or ``"embedded"``);
    ``kafka_kind``/``postgres_kind`` tell each one apart when they differ.
    ``embedded_kafka``/``embedded_postgres`` are set for embedded components so fault tests can
    ``pause()``/``kill()``/``restart()`` them.
    """

    kafka_bootstrap: str
    database_urls: dict[str, str]
    kafka_idempotence: bool
    kind: str  # "explicit" | "testcontainers" | "embedded"
    embedded_kafka: EmbeddedKafka | ApacheKafka | None = None
    embedded_postgres: EmbeddedPostgres | None = None
    kafka_kind: str = ""
    postgres_kind: str = ""
    admin_database_url: str = ""
    started_seconds: dict[str, float] = field(default_factory=dict)

    def broker_env(self) -> dict[str, str]:
        """The platform settings (SINERGI_*) of a service process using this broker."""
        return {
            ENV_KAFKA_BOOTSTRAP: self.kafka_bootstrap,
            ENV_KAFKA_IDEMPOTENCE: "true" if self.kafka_idempotence else "false",
        }


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use true/false)")


def database_url_for(server_url: str, database: str) -> str:
    """``server_url`` with its database path replaced by ``database`` (query string kept)."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def docker_available(timeout: float = 5.0) -> bool:
    """Whether a Docker engine answers quickly (``docker info``, else the Python client's ping).

    Why quick: on a machine without Docker the probe must not slow every test run down.
    """
    docker_cli = shutil.which("docker")
    if docker_cli is not None:
        try:
            result = subprocess.run(
                [docker_cli, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            if result.returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=max(1, int(timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def embedded_broker() -> str:
    """Which embedded broker a run starts: ``SINERGI_EMBEDDED_BROKER`` (default ``tansu``)."""
    chosen = os.environ.get(ENV_EMBEDDED_BROKER, "tansu").strip().lower() or "tansu"
    if chosen not in EMBEDDED_BROKERS:
        raise ValueError(f"{ENV_EMBEDDED_BROKER}={chosen!r}: use one of {', '.join(EMBEDDED_BROKERS)}")
    return chosen


def embedded_kafka_broker(kind: str, work_dir: Path, port: int | None = None) -> EmbeddedKafka | ApacheKafka:
    """An embedded broker of `kind` (one of EMBEDDED_BROKERS), not started yet, its data
    and log under `work_dir`."""
    if kind == "kafka":
        return ApacheKafka(work_dir / "kafka", port)
    return EmbeddedKafka(port, log_path=work_dir / "tansu.log")


def _managed_kind() -> str:
    """``"testcontainers"`` or ``"embedded"`` for whatever is not given explicitly."""
    wanted = os.environ.get(ENV_RUNTIME_KIND, "auto").strip().lower() or "auto"
    if wanted in ("embedded", "testcontainers"):
        return wanted
    if wanted != "auto":
        raise ValueError(f"{ENV_RUNTIME_KIND}={wanted!r}: use auto, embedded or testcontainers")
    return "testcontainers" if docker_available() else "embedded"


def _start_kafka_container(stack: contextlib.ExitStack) -> str:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # older testcontainers layout
        from testcontainers.kafka import KafkaContainer

    container: Any = KafkaContainer(KAFKA_IMAGE).with_kraft()
    container.start()
    stack.callback(container.stop)
    return str(container.get_bootstrap_server())


def _start_postgres_container(stack: contextlib.ExitStack, durable: bool) -> str:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # older testcontainers layout
        from testcontainers.postgres import PostgresContainer

    command = "postgres -c max_connections=200"
    if not durable:
        command += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    container: Any = PostgresContainer(
        POSTGRES_IMAGE,
        username="postgres",
        password="postgres",
        dbname="postgres",
        driver=None,
    ).with_command(command)
    container.start()
    stack.callback(container.stop)
    return str(container.get_connection_url(driver=None))


@contextlib.contextmanager
def start_infrastructure(
    databases: list[str],
    topics: Mapping[str, int],
    *,
    work_dir: Path,
    durable: bool = True,
    kafka_port: int | None = None,
    postgres_port: int | None = None,
) -> Iterator[Infrastructure]:
    """Provide a broker and a PostgreSQL server, create ``databases`` and ``topics``, and yield.

    Whatever this call started is stopped on exit (explicitly configured servers are only
    provisioned, never stopped). ``durable=False`` trades crash safety for speed (tests).
    ``kafka_port``/``postgres_port`` fix the embedded servers' ports (default: free ports).
    Blocking: call it from sync code or wrap it in ``asyncio.to_thread`` (the embedded servers
    stay tied to the process, not to the calling thread).
    """
    work_dir = Path(work_dir).expanduser().absolute()
    explicit_bootstrap = os.environ.get(ENV_KAFKA_BOOTSTRAP, "").strip() or None
    explicit_db_url = os.environ.get(ENV_DATABASE_URL, "").strip() or None
    idempotence_env = _env_bool(ENV_KAFKA_IDEMPOTENCE)

    managed = None
    if explicit_bootstrap is None or explicit_db_url is None:
        managed = _managed_kind()

    with contextlib.ExitStack() as stack:
        timings: dict[str, float] = {}
        embedded_kafka: EmbeddedKafka | ApacheKafka | None = None
        embedded_postgres: EmbeddedPostgres | None = None

        # -- broker -------------------------------------------------------------------------
        began = time.monotonic()
        broker = (
            "kafka" if explicit_bootstrap is not None or managed == "testcontainers" else embedded_broker()
        )
        if IDEMPOTENT_PRODUCER[broker]:
            idempotence = True if idempotence_env is None else idempotence_env
        else:
            if idempotence_env:
                logger.warning(
                    "%s=true ignored: the embedded Tansu broker has no idempotent producer",
                    ENV_KAFKA_IDEMPOTENCE,
                )
            idempotence = False
        if explicit_bootstrap is not None:
            kafka_kind, bootstrap = "explicit", explicit_bootstrap
        elif managed == "testcontainers":
            kafka_kind, bootstrap = "testcontainers", _start_kafka_container(stack)
        else:
            kafka_kind = "embedded"
            work_dir.mkdir(parents=True, exist_ok=True)
            embedded_kafka = embedded_kafka_broker(broker, work_dir, kafka_port)
            embedded_kafka.start()
            stack.callback(embedded_kafka.stop)
            bootstrap = embedded_kafka.bootstrap
        timings["kafka"] = time.monotonic() - began

        # -- PostgreSQL ---------------------------------------------------------------------
        began = time.monotonic()
        if explicit_db_url is not None:
            postgres_kind, admin_url = "explicit", explicit_db_url
        elif managed == "testcontainers":
            postgres_kind = "testcontainers"
            admin_url = _start_postgres_container(stack, durable)
        else:
            postgres_kind = "embedded"
            work_dir.mkdir(parents=True, exist_ok=True)
            embedded_postgres = EmbeddedPostgres(
                work_dir / "pgdata",
                postgres_port,
                durable=durable,
                log_path=work_dir / "postgres.log",
            )
            embedded_postgres.start()
            stack.callback(embedded_postgres.stop)
            admin_url = embedded_postgres.url("postgres")
        timings["postgres"] = time.monotonic() - began

        # -- provisioning ---------------------------------------------------------------------
        began = time.monotonic()
        database_urls = {name: database_url_for(admin_url, name) for name in databases}

        async def _provision() -> None:
            await asyncio.gather(
                create_databases(admin_url, databases),
                create_topics(bootstrap, topics),
            )

        _run_coroutine_sync(_provision)
        timings["provision"] = time.monotonic() - began

        # Mixed (one explicit, one started): report what this process started.
        kind = kafka_kind if kafka_kind == postgres_kind else (managed or "explicit")
        infra = Infrastructure(
            kafka_bootstrap=bootstrap,
            database_urls=database_urls,
            kafka_idempotence=idempotence,
            kind=kind,
            embedded_kafka=embedded_kafka,
            embedded_postgres=embedded_postgres,
            kafka_kind=kafka_kind,
            postgres_kind=postgres_kind,
            admin_database_url=admin_url,
            started_seconds=timings,
        )
        logger.info(
            "infrastructure ready: kafka=%s (%s) postgres=%s (%s) in %s",
            bootstrap,
            kafka_kind,
            _redact(admin_url),
            postgres_kind,
            {k: round(v, 2) for k, v in timings.items()},
        )
        yield infra


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
