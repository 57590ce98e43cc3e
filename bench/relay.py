"""Phase 2: the outbox relay draining a backlog through the services' producer."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.baselines import platform_settings_for
from bench.events import sample_event
from bench.services import fresh_database
from bench.settings import ROOT
from shared.kit.bus import EventBus
from shared.kit.db import connect, migrate
from shared.kit.metrics import KitMetrics
from shared.kit.outbox import OutboxRelay
from shared.runtime.select import Infrastructure

EMPTY_MIGRATIONS = ROOT / "bench" / "no_migrations"  # the kit's tables only


async def relay_drain(infra: Infrastructure, n: int) -> dict[str, Any]:
    """The outbox relay draining `n` pending rows through the services' producer."""
    platform_settings = platform_settings_for(infra)
    url = await fresh_database(infra)
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
