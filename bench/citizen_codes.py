"""How long a citizen waits for a one-time code: from POST /citizen/codes to the message's
arrival in the SMTP sink or the fake WhatsApp gateway (their own arrival timestamps),
with the notification service as its own process, as `make run` starts it.

`python -m bench.run --only citizen_codes` runs it alone.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.openloop import percentiles
from bench.services import ServiceProcess, fresh_database
from shared.runtime.embedded import create_topics, free_port
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink

TOKEN = "bench-gateway-token"


async def _arrival(find: Callable[[], datetime | None], timeout: float = 60) -> datetime | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        await asyncio.sleep(0.002)
    return None


async def citizen_codes(infra: Infrastructure, requests: int = 50) -> dict[str, Any]:
    """p50/p99 of request → arrival for `requests` codes one after the other, by email
    and by WhatsApp, at the service's default channel rates."""
    sink = SmtpSink(port=free_port()).start()
    gateway = FakeGateway(token=TOKEN).start()
    port = free_port()
    group = f"bench-codes-{uuid.uuid4().hex[:6]}"
    # A topic of its own, empty: the domain topics hold the earlier phases' filings, whose
    # messages would queue on the same channels ahead of the codes.
    quiet = f"{group}.events"
    await create_topics(infra.kafka_bootstrap, {f"{group}.dlq": 1, quiet: 1})
    service = ServiceProcess(
        "services.notifications",
        {
            **infra.broker_env(),
            "SINERGI_RATE_LIMIT_FACTOR": "1000",  # every request comes from this one address
            "NOTIFICATIONS_DATABASE_URL": await fresh_database(infra),
            "NOTIFICATIONS_PORT": str(port),
            "NOTIFICATIONS_CONSUMER_GROUP": group,
            "NOTIFICATIONS_TOPICS": json.dumps([quiet]),
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(sink.port),
            "NOTIFICATIONS_SMS_GATEWAY_URL": gateway.sms_url,
            "NOTIFICATIONS_WHATSAPP_GATEWAY_URL": gateway.whatsapp_url,
            "NOTIFICATIONS_GATEWAY_TOKEN": TOKEN,
        },
        port,
    )
    results: dict[str, Any] = {"requests": requests}
    try:
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for channel in ("email", "whatsapp"):
                latencies: list[float] = []
                missing = 0
                for n in range(requests):
                    if channel == "email":
                        contact = f"bench-{uuid.uuid4().hex[:10]}@example.com"

                        def find(to: str = contact) -> datetime | None:
                            mails = sink.messages_to(to)
                            return mails[0].received_at if mails else None
                    else:
                        contact = f"+62812{n:04d}{uuid.uuid4().int % 10_000:04d}"

                        def find(to: str = contact) -> datetime | None:
                            sent = gateway.delivered_to(to)
                            return datetime.fromisoformat(sent[0].at) if sent else None

                    started = datetime.now(UTC)
                    answer = await client.post("/citizen/codes", json={"contact": contact})
                    answer.raise_for_status()
                    arrived = await _arrival(find)
                    if arrived is None:
                        missing += 1
                    else:
                        latencies.append((arrived - started).total_seconds() * 1000)
                results[channel] = {**percentiles(latencies), "missing": missing}
    finally:
        service.stop()
        gateway.stop()
        sink.stop()
    return results
