"""Fixtures of the fault and load tests (`make test-faults`).

The three producing services run once per session as their own processes (each test
gives its consumers their own groups and databases, so the producers' earlier traffic
is invisible to it). The broker-restart test runs last (test_zz_...): it crashes the
session's broker (Tansu restarts empty) and recreates every missing topic. The cluster
tests (test_kafka_cluster.py) run on a three-broker cluster of their own.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest

from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.faults.support import Producers, Rig, running_producers


@pytest.fixture(scope="session")
async def session_producers(infra: Infrastructure) -> AsyncIterator[Producers]:
    async with running_producers(infra) as producers:
        yield producers


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
