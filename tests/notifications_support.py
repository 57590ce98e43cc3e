"""What the notification service's tests share (tests/integration/test_notifications_*.py):
events as the domain services publish them to it, each with a citizen's sealed contact,
and the service's context on a test's own pool, with what it recorded read back in a
form two runs can be compared in.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.notifications.app import (
    DEV_CONTACT_KEY,
    KEY_HOLDERS,
    NotificationsSettings,
    _metrics,
    build,
    build_context,
)
from services.notifications.context import Context
from shared.kit.metrics import KitMetrics
from shared.kit.privacy import citizen_ref, open_contact, seal_contact
from shared.kit.settings import PlatformSettings
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.schemas import Envelope, EventData, make_envelope
from shared.schemas import complaints as complaint_events
from shared.schemas import health as health_events
from shared.schemas.common import SealedContact

NIK = "3306061708900001"
GATEWAY_TOKEN = "test-gateway-token"  # the session's fake gateway takes this one
# What asyncpg asks on a connection's first use of a type (not the handler's statements).
ASYNCPG_INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")


def wired_settings(
    database: str,
    platform: PlatformSettings,
    group: str,
    sink: SmtpSink,
    gateway: FakeGateway,
    **overrides: Any,
) -> NotificationsSettings:
    """The service as a test runs it: its own database and consumer group, the session's
    SMTP sink and SMS/WhatsApp gateway, a delivery round every 0.2 s."""
    values: dict[str, Any] = {
        "database_url": database,
        "platform": platform,
        "consumer_group": group,
        "smtp_host": sink.host,
        "smtp_port": sink.port,
        "sms_gateway_url": gateway.sms_url,
        "whatsapp_gateway_url": gateway.whatsapp_url,
        "gateway_token": GATEWAY_TOKEN,
        "delivery_interval_seconds": 0.2,
        **overrides,
    }
    return NotificationsSettings(**values)


@dataclass
class Wiring:
    """What a test runs the service with (the `wiring` fixture): the session's broker,
    SMTP sink and gateway, and a database and a consumer group of the test's own (its
    offsets at the current end of the domain topics: no earlier test's events)."""

    infra: Infrastructure
    platform: PlatformSettings
    database: str
    group: str
    sink: SmtpSink
    gateway: FakeGateway

    def settings(self, **overrides: Any) -> NotificationsSettings:
        return wired_settings(self.database, self.platform, self.group, self.sink, self.gateway, **overrides)

    def build(self, **overrides: Any) -> FastAPI:
        return build(self.settings(**overrides))


def asking_keys_of(notifications: FastAPI, **producers: httpx.AsyncClient) -> FastAPI:
    """`notifications` asking these in-process domain services (by name, each its HTTP
    client) for their citizens' data keys, as it asks them over the network deployed."""
    keys = notifications.state.service.context.data_keys
    keys.clients.update(producers)
    return notifications


def data_key_urls(urls: dict[str, str]) -> dict[str, str]:
    """The environment of a notification process asking the domain services among `urls`
    (name -> base URL, each its own process) for their citizens' data keys."""
    return {"NOTIFICATIONS_DATA_KEY_URLS": json.dumps({n: u for n, u in urls.items() if n in KEY_HOLDERS})}


# ----- events --------------------------------------------------------------------------------------


def unique_email() -> str:
    return f"warga-{uuid.uuid4().hex[:10]}@example.com"


def unique_phone() -> str:
    return "+62812" + "".join(random.choice("0123456789") for _ in range(8))


def tracking_code() -> str:
    return "ADU-2611-" + "".join(random.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(6))


def envelope(data: EventData, subject: str, source: str, platform: PlatformSettings) -> Envelope:
    return make_envelope(data, subject=subject, source=source, region=platform.region)


def complaint_event(
    model: type[complaint_events.ComplaintEvent],
    platform: PlatformSettings,
    *,
    email: str | None = None,
    phone: str | None = None,
    nik: str = NIK,
    locale: str = "id",
    **fields: Any,
) -> Envelope:
    complaint_id = str(uuid.uuid4())
    base: dict[str, Any] = {
        "complaint_id": complaint_id,
        "tracking_code": tracking_code(),
        "status": "verified",
        "kind": "pengaduan",
        "category": "jalan_rusak",
        "dimension": "mobility",
        "opd": "DPUPR",
        "desa_code": "33.06.01.2001",
        "kecamatan_code": "33.06.01",
        "citizen_ref": citizen_ref(nik, platform.citizen_ref_key.get_secret_value()),
        "contact": seal_contact(DEV_CONTACT_KEY, phone=phone, email=email),
        "locale": locale,
    }
    base.update(fields)
    return envelope(model(**base), complaint_id, complaint_events.SOURCE, platform)


def verified(platform: PlatformSettings, **kwargs: Any) -> Envelope:
    return complaint_event(complaint_events.ComplaintVerified, platform, verified_by="koordinator", **kwargs)


def filed(platform: PlatformSettings, **kwargs: Any) -> Envelope:
    now = datetime.now(UTC)
    return complaint_event(
        complaint_events.ComplaintFiled,
        platform,
        status="submitted",
        title="Jalan berlubang",
        filed_at=now,
        verify_due=now + timedelta(days=3),
        close_due=now + timedelta(days=60),
        **kwargs,
    )


# The hospital the health events below happen at.
AT_RSUD = {"facility": "RSUD-TJITRO", "kecamatan_code": "33.06.01"}


def appointment_called(platform: PlatformSettings, nik: str, phone: str, at: datetime) -> Envelope:
    """The citizen's queue number called at the polyclinic: a rule marked urgent."""
    data = health_events.AppointmentCalled(
        appointment_id=str(uuid.uuid4()),
        booking_code="KES-2611-7K3M9Q",
        status="in_service",
        polyclinic="INT",
        date=at.date(),
        queue_number=12,
        queue_code="A-012",
        task_id=4,
        payment="jkn",
        citizen_ref=citizen_ref(nik, platform.citizen_ref_key.get_secret_value()),
        contact=seal_contact(DEV_CONTACT_KEY, phone=phone),
        called_at=at,
        called_by="perawat-1",
        **AT_RSUD,
    )
    return envelope(data, data.appointment_id, health_events.SOURCE, platform)


def ward_changed(platform: PlatformSettings, at: datetime) -> Envelope:
    """A valid event no rule names."""
    data = health_events.WardBedAvailabilityChanged(
        ward_id=str(uuid.uuid4()),
        ward="MAWAR",
        name="Bangsal Mawar",
        total=20,
        occupied=5,
        available=15,
        updated_by="perawat",
        updated_at=at,
        **AT_RSUD,
    )
    return envelope(data, data.ward_id, health_events.SOURCE, platform)


# ----- the service's context on a test's own pool --------------------------------------------------


REGISTRIES: dict[int, CollectorRegistry] = {}  # each test context's metrics


def context_for(
    pool: asyncpg.Pool, clock: Callable[[], datetime], platform: PlatformSettings, **settings: Any
) -> Context:
    """The context `build` would make from these settings, on `pool`, with `clock` and
    metrics of its own (read by `metrics_of`)."""
    kit = KitMetrics("notifications")
    ctx = build_context(
        NotificationsSettings(database_url="postgresql://unused", platform=platform, **settings),
        lambda: pool,
        _metrics(kit),
    )
    ctx.clock = clock
    REGISTRIES[id(ctx)] = kit.registry
    return ctx


async def snapshot(ctx: Context) -> list[dict[str, Any]]:
    """Every notification with its opened address, history and published events, without
    what is random (ids, Fernet tokens, envelope ids and times), in a stable order."""
    async with ctx.pool().acquire() as conn:
        rows = await conn.fetch("SELECT * FROM notifications")
        history = await conn.fetch("SELECT * FROM notification_history ORDER BY id")
        outbox = await conn.fetch("SELECT * FROM outbox ORDER BY id")
    found: dict[Any, dict[str, Any]] = {}
    for row in rows:
        n = dict(row)
        nid = n.pop("id")
        if n["recipient_key"] == f"erased:{nid}":
            n["recipient_key"] = "erased"
        if n["last_error"] == "citizen data erased":
            n["updated_at"] = "the erasure's transaction time"
        sealed = n.pop("address_sealed")
        n["address"] = (
            open_contact(ctx.contact_key, SealedContact(sealed=sealed, channels=[])) if sealed else None
        )
        n["history"], n["events"] = [], []
        found[nid] = n
    for h in history:
        entry = dict(h)
        entry.pop("id")
        found[entry.pop("notification_id")]["history"].append(entry)
    for record in outbox:
        assert record["topic"] == "notifications.events"
        event = json.loads(record["value"])
        assert record["key"] == event["subject"] == event["data"]["notification_id"]
        assert record["event_type"] == event["type"]
        assert record["headers"]["correlation_id"] == event["correlationid"]
        data = dict(event["data"])
        nid = uuid.UUID(data.pop("notification_id"))
        found[nid]["events"].append({"type": event["type"], "causation": event["causationid"], "data": data})
    return sorted(found.values(), key=lambda n: json.dumps(n, sort_keys=True, default=str))


def metrics_of(ctx: Context) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = REGISTRIES[id(ctx)]
    # Rounded: a histogram's sum depends on the order its observations were added in
    # (floating point), which concurrent deliveries do not fix; a millisecond still shows.
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): round(sample.value, 6)
        for family in registry.collect()
        if family.name.startswith("sinergi_notifications_")
        for sample in family.samples
        if not sample.name.endswith("_created")  # prometheus_client's creation timestamps
    }
