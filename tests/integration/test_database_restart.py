"""A service's PostgreSQL restarted under load: the service recovers by itself."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from services.complaints.app import ComplaintsSettings, build
from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import EmbeddedPostgres, create_databases
from tests.harness import db_fetch, running, wait_for
from tests.integration.test_complaints_service import complaint_body


async def test_database_restart_under_load_loses_no_accepted_write(platform: PlatformSettings) -> None:
    work = Path(tempfile.mkdtemp(prefix="sinergi-pg-restart-"))
    postgres = EmbeddedPostgres(work / "pgdata", durable=True)
    await asyncio.to_thread(postgres.start)
    try:
        await create_databases(postgres.url(), ["complaints"])
        url = postgres.url("complaints")
        app = build(ComplaintsSettings(database_url=url, platform=platform, sla_check_seconds=3600))
        async with running(app) as client:
            accepted: list[str] = []
            unavailable = 0
            stop = asyncio.Event()

            async def citizen() -> None:
                nonlocal unavailable
                while not stop.is_set():
                    response = await client.post("/complaints", json=complaint_body())
                    if response.status_code == 201:
                        accepted.append(response.json()["tracking_code"])
                    else:
                        # Never a 500: the database is away, nothing saved, retry later.
                        assert response.status_code == 503, response.text
                        assert response.headers["retry-after"]
                        unavailable += 1
                    await asyncio.sleep(0.02)

            load = [asyncio.create_task(citizen()) for _ in range(4)]
            await asyncio.sleep(1.0)
            before_outage = len(accepted)
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(1.0)
            ready = await client.get("/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("down")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(postgres.start)

            async def recovered() -> bool:
                return (await client.get("/ready")).status_code == 200

            await wait_for(recovered, timeout=30)
            after = len(accepted)
            await wait_for(lambda: len(accepted) > after + 5, timeout=30)
            stop.set()
            await asyncio.gather(*load)

            assert before_outage > 0 and unavailable > 0
            # Every accepted write is in the database with its event, and all get published.
            rows = await db_fetch(url, "SELECT tracking_code FROM complaints")
            stored = {r["tracking_code"] for r in rows}
            assert stored >= set(accepted)
            # A commit acknowledged by PostgreSQL just as it went down reaches the client as
            # a 503: saved but reported as not saved (the citizen retries and files again).
            assert len(stored - set(accepted)) <= unavailable

            async def all_published() -> bool:
                pending = await db_fetch(url, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
                return pending[0]["n"] == 0

            await wait_for(all_published, timeout=30)
            total = await db_fetch(url, "SELECT count(*) AS n FROM outbox")
            assert total[0]["n"] == len(stored)  # one event per stored complaint
    finally:
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(work, ignore_errors=True)
