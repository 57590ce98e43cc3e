"""Fixtures of the fault and load tests (`make test-faults`).

The three producing services run once per session as their own processes (each test
gives its consumers their own groups and databases, so the producers' earlier traffic
is invisible to it). The broker-restart test runs last (test_zz_...): it empties the
session's broker and recreates every topic.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator

import pytest

from shared.runtime.dev_issuer import DevelopmentIssuer
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.faults.support import Producers, Rig, ServiceProcess, booking_days, make_polyclinic, new_database


@pytest.fixture(scope="session")
async def session_producers(infra: Infrastructure) -> AsyncIterator[Producers]:
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


@pytest.fixture
async def producers(session_producers: Producers) -> Producers:
    """The session's producers, each one restarted (on its own database) if it is no longer
    running, so one test's casualty does not fail the following tests too; the exit is
    reported. (Once, another process on this shared machine SIGTERMed one of them.)"""
    for service in session_producers.all:
        if not service.running:
            code = service.proc.returncode if service.proc is not None else None
            warnings.warn(f"{service.name} had exited ({code}) before this test; restarting it", stacklevel=1)
            await service.start()
    return session_producers


@pytest.fixture
def rig(infra: Infrastructure, producers: Producers, smtp_sink: SmtpSink, fake_gateway: FakeGateway) -> Rig:
    """What the test runs on (see `Rig`): its consumers, citizens and counts come from it."""
    return Rig(infra, producers, smtp_sink, fake_gateway)
