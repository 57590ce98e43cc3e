"""Test harness: real infrastructure for every test that crosses a boundary.

One broker and one PostgreSQL server per test session, chosen like `make run` chooses
(explicit settings, else testcontainers where Docker answers, else the embedded Tansu
and PostgreSQL 18) on free ports and in a temporary directory, so `make test` also
passes while `make run` is up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.complaints.app import ComplaintsSettings
from services.complaints.app import build as build_complaints
from services.health.app import HealthSettings
from services.health.app import build as build_health
from services.permits.app import PermitsSettings
from services.permits.app import build as build_permits
from shared.kit.settings import PlatformSettings
from shared.runtime.apache_kafka import ApacheKafka
from shared.runtime.embedded import EmbeddedKafka, create_topics
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure, start_infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.runtime.topology import topics
from shared.schemas import EGOV_TOPICS
from tests.citizen_support import trust_development_sessions
from tests.harness import SERVICE_LOG_DIR, Served, new_database, new_group, scan_every_topic, serve
from tests.identity_support import Provider, start_provider
from tests.notifications_support import Wiring
from tests.pii import LogRecorder, scan_logs

# Tests may create their own databases and topics on top of these.
BASE_DATABASES = ["complaints"]

# The fault and load tests (minutes long, they pause and restart the session's broker)
# run only when asked for by path: `make test-faults` (pytest tests/faults), and the
# broker-restart one named last in `make test`'s Tansu session; never in a whole-suite run.
FAULTS = Path(__file__).parent / "faults"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test proves nothing: a run that skipped any fails, unless the person
    running it says skips are expected (SINERGI_ALLOW_SKIPS=1, for a partial local run)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == 0 and os.environ.get("SINERGI_ALLOW_SKIPS") != "1":
        reporter.write_line(f"{skipped} test(s) skipped: a skipped test does not pass", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path != FAULTS:
        return None
    asked = any(Path(arg.split("::")[0]).resolve().is_relative_to(FAULTS) for arg in config.args)
    return None if asked else True


@pytest.fixture(scope="session", autouse=True)
def log_recorder() -> Iterator[LogRecorder]:
    """Every log line written in this process during the suite, for the PII guard."""
    shutil.rmtree(SERVICE_LOG_DIR, ignore_errors=True)
    with LogRecorder() as recorder:
        yield recorder
    problems = scan_logs(recorder.lines, SERVICE_LOG_DIR)
    assert not problems, "personal data in logs:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="session")
def infra(log_recorder: LogRecorder) -> Iterator[Infrastructure]:
    # Our own directory, not pytest's numbered ones: pytest prunes those, and a
    # concurrent run (e.g. a second `make test`) must not delete a live data directory.
    work = Path(tempfile.mkdtemp(prefix="sinergi-test-"))
    try:
        with start_infrastructure(BASE_DATABASES, topics(), work_dir=work, durable=False) as infrastructure:
            yield infrastructure
            problems = asyncio.run(scan_every_topic(infrastructure.kafka_bootstrap))
            assert not problems, "personal data on the bus:\n" + "\n".join(problems[:20])
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def broker_process(infra: Infrastructure) -> EmbeddedKafka | ApacheKafka:
    """The broker as a process this suite controls (pause, resume, restart), for the
    tests whose fault is the broker itself. A run on a broker it cannot control fails
    these tests instead of skipping them: CI pins the runtime it proves."""
    if infra.embedded_kafka is None:
        pytest.fail(
            f"this test stops and restarts the broker, but the broker is {infra.kafka_kind}"
            " (not started by the suite): run with SINERGI_RUNTIME_KIND=embedded and no"
            " SINERGI_KAFKA_BOOTSTRAP"
        )
    return infra.embedded_kafka


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
    return await new_database(infra)


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    """Keycloak with the deployment's realm and the test officers (started on first use)."""
    found, work = start_provider()
    try:
        yield found
    finally:
        found.keycloak.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
async def complaints_service(platform: PlatformSettings, fresh_database: str) -> AsyncIterator[Served]:
    settings = ComplaintsSettings(database_url=fresh_database, platform=platform, sla_check_seconds=3600)
    async with serve(build_complaints(settings), fresh_database) as served:
        yield served


@pytest.fixture
async def permits_service(platform: PlatformSettings, fresh_database: str) -> AsyncIterator[Served]:
    settings = PermitsSettings(
        database_url=fresh_database, platform=platform, sla_check_seconds=3600, expiry_check_seconds=3600
    )
    async with serve(build_permits(settings), fresh_database) as served:
        yield served


@pytest.fixture
async def health_service(platform: PlatformSettings, fresh_database: str) -> AsyncIterator[Served]:
    settings = HealthSettings(database_url=fresh_database, platform=platform, no_show_check_seconds=3600)
    async with serve(trust_development_sessions(build_health(settings)), fresh_database) as served:
        yield served


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
async def wiring(
    infra: Infrastructure,
    platform: PlatformSettings,
    fresh_database: str,
    smtp_sink: SmtpSink,
    fake_gateway: FakeGateway,
) -> Wiring:
    """The notification service's surroundings for one test (tests/notifications_support.py)."""
    group = await new_group(infra, "notifications-test", EGOV_TOPICS)  # what the service consumes
    return Wiring(infra, platform, fresh_database, group, smtp_sink, fake_gateway)


@pytest.fixture
async def fresh_topic(infra: Infrastructure) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    await create_topics(infra.kafka_bootstrap, {name: 3})
    return name


# Attachments the services this suite starts keep, away from `make run`'s .run/.
os.environ.setdefault("SINERGI_ATTACHMENTS_DIR", tempfile.mkdtemp(prefix="sinergi-attachments-"))
# INFO, as services run in production: the guard reads what they really write.
os.environ.setdefault("SINERGI_LOG_LEVEL", "INFO")
# Abuse limits a thousandfold for every service this suite starts, in this process or as
# a process: the suite files and books from one address far more than a regency's
# clients would. tests/integration/test_abuse_limits.py sets the real numbers back.
os.environ.setdefault("SINERGI_RATE_LIMIT_FACTOR", "1000")
# Admission control's in-flight limit and latency budget far above the suite's bursts: a
# test that floods a service checks the service's own rules (abuse limits, exactly once),
# not the overload refusal. tests/integration/test_admission_control.py sets a small limit.
os.environ.setdefault("SINERGI_MAX_IN_FLIGHT", "100000")
os.environ.setdefault("SINERGI_ADMISSION_BUDGET_SECONDS", "3600")
# Likewise the messages one contact that never proved itself may be sent per hour: the
# suite files many complaints naming one address. test_citizen_sessions.py sets it back.
os.environ.setdefault("NOTIFICATIONS_UNSOLICITED_PER_HOUR", "100000")
