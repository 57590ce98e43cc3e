"""Test harness: real infrastructure for every test that crosses a boundary.

One broker and one PostgreSQL server per test session, chosen like `make run` chooses
(explicit settings, else testcontainers where Docker answers, else the embedded Tansu
and PostgreSQL 18) on free ports and in a temporary directory, so `make test` also
passes while `make run` is up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import create_databases, create_topics
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure, database_url_for, start_infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.runtime.topology import topics

# Tests may create their own databases and topics on top of these.
BASE_DATABASES = ["complaints"]


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    # Our own directory, not pytest's numbered ones: pytest prunes those, and a
    # concurrent run (e.g. a second `make test`) must not delete a live data directory.
    work = Path(tempfile.mkdtemp(prefix="sinergi-test-"))
    try:
        with start_infrastructure(BASE_DATABASES, topics(), work_dir=work, durable=False) as infrastructure:
            yield infrastructure
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(infra: Infrastructure) -> PlatformSettings:
    return PlatformSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        kafka_idempotence=infra.kafka_idempotence,
        outbox_poll_seconds=0.5,
        consumer_backoff_seconds=0.05,
        consumer_session_timeout_ms=3000,
        consumer_heartbeat_ms=500,
    )


@pytest.fixture
async def fresh_database(infra: Infrastructure) -> str:
    """A new, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = infra.admin_database_url or next(iter(infra.database_urls.values()))
    await create_databases(admin, [name])
    return database_url_for(admin, name)


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server that keeps every message (the notification service's relay in tests)."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def fake_gateway() -> Iterator[FakeGateway]:
    """The SMS/WhatsApp HTTP gateway stand-in; tests tell it to fail with `fail_next`."""
    with FakeGateway(token="test-gateway-token") as gateway:
        yield gateway


@pytest.fixture
async def fresh_topic(infra: Infrastructure) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    await create_topics(infra.kafka_bootstrap, {name: 3})
    return name


os.environ.setdefault("SINERGI_LOG_LEVEL", "WARNING")
