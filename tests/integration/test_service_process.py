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
        # A connection per request: an idle kept-alive connection closed by the shutdown
        # would otherwise fail the next request sent on it before the server saw it.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=no_keepalive) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, timeout=60, interval=0.2)

            accepted: list[str] = []
            unanswered: list[str] = []
            refused = 0
            sent = 0
            stop = asyncio.Event()

            async def citizen() -> None:
                nonlocal refused, sent
                while not stop.is_set():
                    sent += 1
                    try:
                        response = await client.post("/complaints", json=complaint_body())
                    except httpx.ConnectError:
                        refused += 1  # the listener is closed: a clean refusal, never a 500
                        await asyncio.sleep(0.05)
                        continue
                    except httpx.TransportError as exc:
                        # Closed before answering: acceptable only for a request the
                        # service never started (checked against the database below).
                        unanswered.append(type(exc).__name__)
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
    assert refused > 0, "clients kept trying after the exit and were refused"
    assert "service stopped" in output
    # In-flight requests were finished and answered: the complaints stored are exactly
    # the ones answered 201 (a request cut off after its commit would be stored but
    # unanswered), and each has its event in the outbox.
    rows = await db_fetch(fresh_database, "SELECT tracking_code FROM complaints")
    assert sorted(r["tracking_code"] for r in rows) == sorted(accepted), unanswered
    events = await db_fetch(
        fresh_database,
        "SELECT count(*) AS n FROM outbox WHERE event_type = 'id.sinergi.complaints.complaint.filed.v1'",
    )
    assert events[0]["n"] == len(rows)
    # No personal data in the service's logs.
    assert "3306061708900001" not in output and "81234567890" not in output
