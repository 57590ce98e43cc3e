"""Admission control on a real service (the complaints service, its PostgreSQL and the
broker): a burst far above what it may handle at once is answered 201 or 503 with
Retry-After, never 500, and exactly the accepted filings exist, each with its event in
the outbox; a refused one left nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.complaints.app import ComplaintsSettings, build
from shared.kit.settings import PlatformSettings
from tests.harness import db_fetchval, running
from tests.integration.test_complaints_service import complaint_body


@pytest.fixture
async def busy_complaints(
    platform: PlatformSettings, fresh_database: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The complaints service with four places (the suite's services have thousands)."""
    small = platform.model_copy(update={"max_in_flight": 4})
    app = build(ComplaintsSettings(database_url=fresh_database, platform=small, sla_check_seconds=3600))
    async with running(app) as client:
        yield client, fresh_database


async def test_a_burst_is_answered_accepted_or_busy_and_nothing_is_lost(
    busy_complaints: tuple[httpx.AsyncClient, str],
) -> None:
    client, database = busy_complaints
    answers = await asyncio.gather(
        *(client.post("/complaints", json=complaint_body(title=f"Jalan rusak nomor {i}")) for i in range(120))
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 503}, statuses
    accepted = [a.json()["tracking_code"] for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 503]
    assert accepted and refused, "some are taken, the rest told to come back"
    assert all(a.headers["Retry-After"] == "1" for a in refused)
    assert await db_fetchval(database, "SELECT count(*) FROM complaints") == len(accepted)
    filed = await db_fetchval(
        database,
        "SELECT count(DISTINCT key) FROM outbox WHERE event_type LIKE '%complaint.filed%'",
    )
    assert filed == len(accepted)
    metrics = (await client.get("/metrics")).text
    assert f"sinergi_http_refused_busy_total {float(len(refused))}" in metrics
