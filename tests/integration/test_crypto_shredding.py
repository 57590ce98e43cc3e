"""Crypto-shredding of what stays on the log (UU PDP 27/2022), end to end on the real broker
and PostgreSQL: a complaint's contact travels sealed with its citizen's data key, the
notification service asks the complaints service for that key and delivers; the erasure
destroys the key, after which no copy of the contact (topic, outbox) opens with any key
left anywhere, and a copy consumed again reaches no one. What the citizen wrote (the
title) travels sealed with the text key of that data key, which the integration view is
given (and which opens no contact): it shows the title while the key exists, a neutral
placeholder after the erasure, and a rebuild of the view shows none of it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from services.complaints.app import ComplaintsSettings
from services.complaints.app import build as build_complaints
from services.health.app import HealthSettings
from services.integration.app import build as build_view
from services.notifications.app import NotificationsSettings
from services.permits.app import PermitsSettings
from shared.kit.privacy import open_citizen_text, open_contact, text_key
from shared.kit.settings import PlatformSettings
from shared.schemas.common import SealedContact, SealedText
from tests.harness import (
    Infrastructure,
    db_fetch,
    db_fetchval,
    new_database,
    officer_headers,
    opened_contact,
    published,
    running,
    wait_for,
)
from tests.integration.test_complaints_service import complaint_body
from tests.notifications_support import Wiring, asking_keys_of, unique_phone
from tests.view_support import view_settings

NIK = "3306061708900001"
TOPIC = "complaints.events"


def keys_left_in_settings() -> list[str]:
    """Every key a service is configured with that could open a sealed contact."""
    return [
        NotificationsSettings().contact_key.get_secret_value(),
        *(s().master_key.get_secret_value() for s in (ComplaintsSettings, PermitsSettings, HealthSettings)),  # type: ignore[attr-defined]
    ]


async def keys_left_in_database(ctx: Any) -> list[str]:
    """Every data key the complaints service (its context `ctx`) still keeps, unwrapped."""
    async with ctx.pool().acquire() as conn:
        ids = [row["key_id"] for row in await conn.fetch("SELECT key_id FROM citizen_keys")]
        return [await ctx.data_keys.key(conn, key_id) for key_id in ids]


def opens_with(key: str, sealed: SealedContact | SealedText) -> bool:
    try:
        if isinstance(sealed, SealedText):
            open_citizen_text(key, sealed)
        else:
            open_contact(key, sealed)
    except ValueError:
        return False
    return True


def every_key(keys: list[str]) -> list[str]:
    """`keys` and the text key each gives: whatever could open a sealed text."""
    return [*keys, *(text_key(key) for key in keys)]


async def test_erasure_shreds_every_sealed_copy_of_the_contact(wiring: Wiring) -> None:
    phone = unique_phone()
    database = await new_database(wiring.infra)
    complaints = build_complaints(
        ComplaintsSettings(database_url=database, platform=wiring.platform, sla_check_seconds=3600)
    )
    notifications = wiring.build()

    async def read_by_notifications(event_id: str) -> None:
        """Wait until the notification service has taken the event into its inbox."""
        inbox = "SELECT count(*) FROM inbox WHERE event_id = $1"
        await wait_for(lambda: db_fetchval(wiring.database, inbox, event_id), timeout=30)

    async with running(complaints) as citizen_api, running(notifications):
        asking_keys_of(notifications, complaints=citizen_api)
        ctx = complaints.state.service.context
        filed = await citizen_api.post(
            "/complaints", json=complaint_body(reporter={"nik": NIK, "phone": phone})
        )
        assert filed.status_code == 201, filed.text
        code = filed.json()["tracking_code"]

        # Delivered to the phone while the key exists.
        await wait_for(lambda: wiring.gateway.delivered_to(phone), timeout=30)

        [(record, event)] = await published(wiring.infra.kafka_bootstrap, TOPIC, 1, tracking_code=code)
        contact = event["data"]["contact"]
        sealed = SealedContact(**contact)
        assert sealed.key_id and phone not in record.value.decode()
        assert await opened_contact(ctx, contact) == {"phone": phone}
        # The key on the bus is none of the services' configured keys.
        assert not any(opens_with(key, sealed) for key in keys_left_in_settings())

        # The producer's endpoint: the notification service's machine role only.
        path = f"/internal/data-keys/{sealed.key_id}"
        assert (await citizen_api.get(path, headers=officer_headers("key_reader"))).status_code == 200
        assert (await citizen_api.get(path, headers=officer_headers("coordinator"))).status_code == 403
        assert (await citizen_api.get(path)).status_code == 401
        assert (
            await citizen_api.get("/internal/data-keys/x", headers=officer_headers("key_reader"))
        ).status_code == 422

        erased = await citizen_api.post("/admin/citizens/erase", json={"nik": NIK}, headers=officer_headers())
        assert erased.status_code == 200, erased.text
        assert (await citizen_api.get(path, headers=officer_headers("key_reader"))).status_code == 404
        # The notification service forgets the keys it held once it reads the erasure (it
        # may come on another partition than the complaint's events, so wait for it). The
        # erasure's id is read from this service's outbox: the suite's other tests erase
        # citizens on the same topic.
        [staged] = await db_fetch(
            database, "SELECT value FROM outbox WHERE key = $1", erased.json()["citizen_ref"]
        )
        await read_by_notifications(json.loads(staged["value"])["id"])

        # Every copy the log and the outbox keep: none opens with any key left in any
        # service's settings or in the complaints database.
        outbox = await db_fetch(database, "SELECT value FROM outbox WHERE key = $1", event["subject"])
        copies = [record.value, *(row["value"] for row in outbox)]
        left = keys_left_in_settings() + await keys_left_in_database(ctx)
        assert left, "the settings hold keys: the check below must try them"
        for copy in copies:
            held = json.loads(copy)["data"].get("contact")
            if held is None:
                continue
            assert held["key_id"] == sealed.key_id
            assert not any(opens_with(key, SealedContact(**held)) for key in left)
        assert await opened_contact(ctx, contact) is None

        # A copy consumed again (a dead letter replayed, a rebuild) reaches no one now.
        again = {**json.loads(record.value), "id": str(uuid.uuid4())}
        async with AIOKafkaProducer(bootstrap_servers=wiring.infra.kafka_bootstrap) as producer:
            await producer.send_and_wait(
                TOPIC, json.dumps(again).encode(), key=record.key, headers=list(record.headers)
            )
        await read_by_notifications(again["id"])
        told = await db_fetchval(
            wiring.database,
            "SELECT count(*) FROM notifications WHERE source_event_id::text = $1 AND recipient_kind = 'citizen'",
            again["id"],
        )
        assert told == 0
    assert len(wiring.gateway.delivered_to(phone)) == 1


async def test_what_the_citizen_wrote_is_read_by_the_view_until_the_erasure_and_never_after(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> None:
    title = f"Jalan depan rumah Pak Budi {uuid.uuid4().hex[:8]} berlubang"
    database = await new_database(infra)
    complaints = build_complaints(
        ComplaintsSettings(database_url=database, platform=platform, sla_check_seconds=3600)
    )
    # The view on the real topic, in a group and database of its own.
    view = build_view(await view_settings(infra, platform, fresh_database, "seal", topics=[TOPIC]))

    async def shown(code: str, **expected: object) -> dict[str, Any] | None:
        answer = await view_api.get(f"/api/track/{code}")
        if answer.status_code != 200 or any(answer.json().get(k) != v for k, v in expected.items()):
            return None
        return answer.json()

    async def clear_in_the_view() -> int:
        """Rows of the view's database holding the title in clear (any table, any column)."""
        tables = ("items", "history", "notifications")
        counted = [
            await db_fetchval(
                fresh_database, f"SELECT count(*) FROM {t} r WHERE r::text LIKE $1", f"%{title}%"
            )
            for t in tables
        ]
        return sum(int(n) for n in counted)  # type: ignore[call-overload]

    async with running(complaints) as citizen_api, running(view) as view_api:
        view.state.service.context.text_keys.clients["complaints"] = citizen_api  # as over the network
        ctx = complaints.state.service.context
        body = complaint_body(title=title, reporter={"nik": NIK, "phone": unique_phone()})
        filed = await citizen_api.post("/complaints", json=body)
        assert filed.status_code == 201, filed.text
        code = filed.json()["tracking_code"]
        coordinator = officer_headers("coordinator")
        assert (
            await citizen_api.post(f"/officer/complaints/{code}/verify", headers=coordinator)
        ).status_code == 200

        # On the bus: sealed, never in clear; opened by the text key, not by the data key.
        [(record, event)] = await published(
            infra.kafka_bootstrap, TOPIC, 1, tracking_code=code, status="submitted"
        )
        assert title not in record.value.decode() and "title" not in event["data"]
        sealed = SealedText(**event["data"]["sealed_title"])
        contact = SealedContact(**event["data"]["contact"])
        assert sealed.key_id == contact.key_id
        async with ctx.pool().acquire() as conn:
            data_key = await ctx.data_keys.key(conn, sealed.key_id)
        assert data_key is not None and not opens_with(data_key, sealed)
        assert open_citizen_text(text_key(data_key), sealed) == title
        assert not any(opens_with(key, sealed) for key in every_key(keys_left_in_settings()))

        # The producer gives the view's role the text key only, which opens no contact.
        texts, keys = f"/internal/text-keys/{sealed.key_id}", f"/internal/data-keys/{sealed.key_id}"
        given = await citizen_api.get(texts, headers=officer_headers("text_reader"))
        assert given.status_code == 200 and given.json()["key"] == text_key(data_key)
        assert not opens_with(given.json()["key"], contact)
        assert (await citizen_api.get(keys, headers=officer_headers("text_reader"))).status_code == 403
        assert (await citizen_api.get(texts, headers=officer_headers("key_reader"))).status_code == 403
        assert (await citizen_api.get(texts)).status_code == 401

        # The view shows the title while the key exists, and keeps it sealed.
        before = await wait_for(lambda: shown(code, status="verified", title=title), timeout=45)
        assert before["title_withheld"] is False
        page = await view_api.get("/lacak", params={"kode": code})
        assert title in page.text
        assert await clear_in_the_view() == 0

        erased = await citizen_api.post("/admin/citizens/erase", json={"nik": NIK}, headers=officer_headers())
        assert erased.status_code == 200, erased.text
        assert (await citizen_api.get(texts, headers=officer_headers("text_reader"))).status_code == 404

        # After: a neutral placeholder, naming no one.
        after = await wait_for(lambda: shown(code, title=None), timeout=45)
        assert after["title_withheld"] is True and after["status"] == "verified"
        page = await view_api.get("/lacak", params={"kode": code})
        assert title not in page.text and "Judul tidak tersedia." in page.text

        # Every copy of the title the log and the outbox keep: none opens with any key left.
        outbox = await db_fetch(database, "SELECT value FROM outbox WHERE key = $1", event["subject"])
        copies = [
            json.loads(c)["data"].get("sealed_title") for c in (record.value, *(r["value"] for r in outbox))
        ]
        left = every_key(keys_left_in_settings() + await keys_left_in_database(ctx))
        assert [c for c in copies if c], "the filing's copies carry the sealed title"
        for held in filter(None, copies):
            assert not any(opens_with(key, SealedText(**held)) for key in left)

        # A rebuild re-reads the filing: the view shows none of the title, and holds none.
        rebuilt = await view_api.post("/admin/rebuild", headers=officer_headers("admin"))
        assert rebuilt.status_code == 200 and rebuilt.json()["complete"], rebuilt.text
        again = await wait_for(lambda: shown(code, status="verified"), timeout=45)
        assert again["title"] is None and again["title_withheld"] is True
        assert await clear_in_the_view() == 0
