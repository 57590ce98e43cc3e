"""Events as the services publish them, and reading a topic back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from services.notifications.app import NotificationsSettings
from shared.kit.privacy import seal_contact
from shared.kit.reader import assigned_reader
from shared.runtime.embedded import create_topics
from shared.runtime.select import Infrastructure
from shared.schemas import make_envelope
from shared.schemas.common import SealedContact
from shared.schemas.complaints import SOURCE, ComplaintFiled


def sample_event(i: int = 0, contact: SealedContact | None = None) -> bytes:
    """A complaint-filed event as the complaints service publishes it, with a
    placeholder sealed contact unless a real one is given."""
    now = datetime.now(UTC)
    data = ComplaintFiled(
        complaint_id=str(uuid.uuid4()),
        tracking_code=f"ADU-2611-BNCH-{i:04d}-{i % 100000:05d}",
        status="submitted",
        kind="pengaduan",
        category="jalan_rusak",
        dimension="mobility",
        opd="DPUPR",
        desa_code="33.06.01.2001",
        kecamatan_code="33.06.01",
        citizen_ref="cr1_" + uuid.uuid4().hex,
        contact=contact or SealedContact(sealed="gAAAAAB" + "x" * 120, channels=["sms", "whatsapp"]),
        title="Jalan berlubang di depan balai desa",
        filed_at=now,
        verify_due=now + timedelta(days=3),
        close_due=now + timedelta(days=84),
    )
    envelope = make_envelope(data, subject=data.complaint_id, source=SOURCE, region="33.06")
    return envelope.to_kafka().value


async def topic_events(bootstrap: str, topic: str) -> list[tuple[dict[str, Any], float]]:
    """Every CloudEvent on `topic` and its record's timestamp (seconds)."""
    found: list[tuple[dict[str, Any], float]] = []
    async with assigned_reader(bootstrap, [topic]) as (reader, partitions):
        if not partitions:
            return found
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                found += [(json.loads(r.value), r.timestamp / 1000) for r in records]
            if not batch and all([await reader.position(p) >= end[p] for p in partitions]):
                break
    return found


async def preload_topic(infra: Infrastructure, events: int) -> str:
    """A fresh topic holding `events` realistic complaint-filed events."""
    # Sealed as events before data keys were: with the notification service's own key, so
    # the bench measures consuming, not asking producers for keys.
    key = NotificationsSettings().contact_key.get_secret_value()
    topic = f"bench.consumers.{uuid.uuid4().hex[:6]}"
    await create_topics(infra.kafka_bootstrap, {topic: 6})
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        futures = []
        for i in range(events):
            # a contact the notification service can open
            value = sample_event(i, seal_contact(key, email=f"warga{i}@example.com"))
            futures.append(await producer.send(topic, value, key=uuid.uuid4().hex.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return topic
