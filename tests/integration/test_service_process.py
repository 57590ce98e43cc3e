"""A service as its own process, as `make run` starts it: start-up, and SIGTERM under load."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx

from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from tests.harness import db_fetch, service_log, start_service_process, wait_for
from tests.integration.test_complaints_service import complaint_body


async def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(
    infra: Infrastructure, fresh_database: str
) -> None:
    port = free_port()
    proc = start_service_process(
        "complaints", bootstrap=infra.kafka_bootstrap, database_url=fresh_database, port=port
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, timeout=60, interval=0.2)

            accepted: list[str] = []
            refused = 0
            sent = 0
            stop = asyncio.Event()

            async def citizen() -> None:
                nonlocal refused, sent
                while not stop.is_set():
                    sent += 1
                    try:
                        response = await client.post("/complaints", json=complaint_body())
                    except httpx.TransportError:
                        refused += 1  # the listener is closed: a clean refusal, never a 500
                        await asyncio.sleep(0.05)
                        continue
                    assert response.status_code == 201, response.text
                    accepted.append(response.json()["tracking_code"])

            load = [asyncio.create_task(citizen()) for _ in range(8)]
            await asyncio.sleep(1.5)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(proc.wait, 30)
            stopped_after = time.monotonic() - signalled
            stop.set()
            await asyncio.gather(*load)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = service_log(proc)
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown (exit 143 in a shell).
    assert exit_code in (0, -signal.SIGTERM), output[-3000:]
    assert "Application shutdown complete" in output
    assert stopped_after < 25
    assert len(accepted) > 10
    assert "service stopped" in output
    # Every accepted complaint was committed with its event in the outbox.
    rows = await db_fetch(fresh_database, "SELECT tracking_code FROM complaints")
    assert {r["tracking_code"] for r in rows} >= set(accepted)
    events = await db_fetch(
        fresh_database,
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'id.sinergi.complaints.complaint.filed.v1'",
    )
    assert events[0]["n"] == len(rows)
    # No personal data in the service's logs.
    assert "3306061708900001" not in output and "81234567890" not in output
