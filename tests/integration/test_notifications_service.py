"""The notification service against the real broker, PostgreSQL, SMTP sink and gateway.

Each test uses its own consumer group, started at the current end of the domain topics
(so earlier tests' events are not replayed into it), and its own databases.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from fastapi import FastAPI

from services.complaints.app import ComplaintsSettings
from services.complaints.app import build as build_complaints
from services.notifications.app import NotificationsSettings
from services.notifications.app import build as build_notifications
from shared.kit.consumer import dead_letter_topic
from shared.kit.privacy import citizen_ref
from shared.runtime.select import Infrastructure
from shared.schemas import Envelope
from shared.schemas import complaints as complaint_events
from shared.schemas import health as health_events
from shared.schemas import notifications as notification_events
from tests.citizen_support import open_session
from tests.harness import (
    db_fetch,
    events_of,
    metric,
    new_database,
    officer_headers,
    read_topic,
    repo_root,
    running,
    send_event,
    wait_for,
)
from tests.integration.test_complaints_service import file as file_complaint
from tests.notifications_support import (
    GATEWAY_TOKEN,
    NIK,
    Wiring,
    appointment_called,
    asking_keys_of,
    envelope,
    filed,
    unique_email,
    unique_phone,
    verified,
    ward_changed,
)

TEMPLATES = repo_root() / "services" / "notifications" / "templates"
WIB = timedelta(hours=7)
# A message's statuses when the gateway fails twice and then takes it.
RETRIED_TWICE = [
    "created",
    "sending",
    "temporary-failure",
    "sending",
    "temporary-failure",
    "sending",
    "delivered",
]


# ----- helpers -------------------------------------------------------------------------------------


@dataclass
class Rig(Wiring):
    """The service's wiring, with a producer publishing the domain events it consumes and
    settings for quick retries and unthrottled email."""

    producer: AIOKafkaProducer

    def settings(self, **overrides: Any) -> NotificationsSettings:
        values: dict[str, Any] = {
            "max_attempts": 3,
            "retry_base_seconds": 0.3,
            "retry_factor": 2.0,
            "email_rate_per_second": 200.0,
            "email_burst": 200,
            **overrides,
        }
        return super().settings(**values)

    async def publish(self, envelope: Envelope, topic: str = "complaints.events") -> None:
        await send_event(self.producer, topic, envelope)

    async def rows(self, where: str, *args: Any) -> list[Any]:
        query = f"SELECT * FROM notifications WHERE {where} ORDER BY created_at"
        return await db_fetch(self.database, query, *args)

    async def history(self, notification_id: Any) -> list[str]:
        found = await db_fetch(
            self.database,
            "SELECT status FROM notification_history WHERE notification_id = $1 ORDER BY id",
            notification_id,
        )
        return [r["status"] for r in found]

    async def status_is(self, where: str, *args: Any, status: str) -> list[Any] | None:
        found = await self.rows(where, *args)
        return found if found and all(r["status"] == status for r in found) else None

    async def bus_events(self, notification_id: Any, expected: int) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]] | None:
            records = await read_topic(self.infra.kafka_bootstrap, notification_events.TOPIC)
            found = events_of(records, notification_id=str(notification_id))
            return [e for _, e in found] if len(found) >= expected else None

        return await wait_for(enough, timeout=30)


@pytest.fixture
async def rig(wiring: Wiring) -> AsyncIterator[Rig]:
    async with AIOKafkaProducer(bootstrap_servers=wiring.infra.kafka_bootstrap) as producer:
        yield Rig(**vars(wiring), producer=producer)


# ----- tests ----------------------------------------------------------------------------------------


async def test_a_filed_complaint_is_emailed_once_in_indonesian_even_when_replayed(rig: Rig) -> None:
    email = unique_email()
    complaints = build_complaints(
        ComplaintsSettings(
            database_url=await new_database(rig.infra), platform=rig.platform, sla_check_seconds=3600
        )
    )
    settings = rig.settings()
    async with running(complaints) as citizen_api:
        notifications = asking_keys_of(build_notifications(settings), complaints=citizen_api)
        async with running(notifications) as officer_api:
            code = await file_complaint(
                citizen_api, reporter={"nik": NIK, "phone": "081234567890", "email": email}
            )

            mails = await wait_for(lambda: rig.sink.messages_to(email), timeout=30)
            assert len(mails) == 1
            mail = mails[0]
            assert code in mail.subject and code in mail.text
            assert mail.subject.startswith("Pengaduan Anda telah kami terima")
            assert "laporan Anda" in mail.text and "WIB" in mail.text  # Indonesian, local time
            assert mail.message["Content-Language"] == "id"
            assert NIK not in mail.raw.decode(errors="replace")

            # The officer API shows it, with its history; officers only.
            headers = officer_headers("notification_officer")

            async def recorded() -> httpx.Response | None:
                # The sink has the mail a moment before the worker records `delivered`.
                found = await officer_api.get(
                    "/notifications", params={"tracking_code": code}, headers=headers
                )
                items = found.json().get("items", [])
                return found if items and items[0]["status"] == "delivered" else None

            listed = await wait_for(recorded, timeout=30)
            assert listed.status_code == 200 and listed.json()["total"] == 1
            item = listed.json()["items"][0]
            assert item["status"] == "delivered" and item["channel"] == "email"
            assert item["address_masked"] == email[0] + "***@example.com"
            assert item["template"] == "id/complaints/filed.email.j2"
            detail = (await officer_api.get(f"/notifications/{item['id']}", headers=headers)).json()
            assert [h["status"] for h in detail["history"]] == ["created", "sending", "delivered"]
            assert "body" not in detail
            assert (await officer_api.get("/notifications")).status_code == 401
            forbidden = await officer_api.get("/notifications", headers=officer_headers("coordinator"))
            assert forbidden.status_code == 403

            # Every status change is on notifications.events, without personal data.
            events = await rig.bus_events(item["id"], 3)
            assert [e["type"].split(".")[-2] for e in events] == ["created", "sending", "delivered"]
            for event in events:
                text = json.dumps(event)
                assert email not in text and NIK not in text and "+6281234567890" not in text
            assert events[-1]["data"]["tracking_code"] == code
            assert events[-1]["data"]["citizen_ref"].startswith("cr1_")

            # The same record again: the inbox recognises it, no second email.
            records = await read_topic(rig.infra.kafka_bootstrap, "complaints.events")
            (original, _), *_ = events_of(records, tracking_code=code)

            async def redelivered_to(app: FastAPI) -> None:
                await rig.producer.send_and_wait(
                    original.topic, original.value, key=original.key, headers=list(original.headers)
                )
                await wait_for(
                    lambda: metric(app, "sinergi_inbox_duplicates_skipped_total", consumer=rig.group) >= 1,
                    timeout=30,
                )

            await redelivered_to(notifications)

        # ... and after a restart of the notification service too.
        restarted = build_notifications(settings)  # replays what it has seen: no key asked
        async with running(restarted):
            await redelivered_to(restarted)
    assert len(rig.sink.messages_to(email)) == 1
    assert len(await rig.rows("tracking_code = $1", code)) == 1


async def test_the_opd_is_told_why_a_citizen_reopened_with_the_reason_opened_by_its_text_key(
    rig: Rig,
) -> None:
    """The reason travels sealed with the citizen's text key; the notification service opens
    it with the text key of the data key it asks for, and quotes it to the OPD."""
    reason = f"Lubangnya masih ada {uuid.uuid4().hex[:8]}"
    complaints = build_complaints(
        ComplaintsSettings(
            database_url=await new_database(rig.infra), platform=rig.platform, sla_check_seconds=3600
        )
    )
    async with running(complaints) as citizen_api:
        notifications = asking_keys_of(build_notifications(rig.settings()), complaints=citizen_api)
        async with running(notifications):
            code = await file_complaint(citizen_api, reporter={"nik": NIK, "phone": unique_phone()})
            steps = [
                ("verify", {}, officer_headers("coordinator")),
                ("dispatch", {"opd": "DPUPR"}, officer_headers("coordinator")),
                ("resolve", {"resolution": "Sudah ditambal"}, officer_headers("opd_officer", opd="DPUPR")),
            ]
            for step, body, headers in steps:
                done = await citizen_api.post(
                    f"/officer/complaints/{code}/{step}", json=body, headers=headers
                )
                assert done.status_code == 200, done.text
            reopened = await citizen_api.post(f"/complaints/{code}/reopen", json={"reason": reason})
            assert reopened.status_code == 200, reopened.text

            async def told_the_opd() -> list[Any] | None:
                mails = [m for m in rig.sink.messages_to("dpupr@purworejokab.go.id") if code in m.text]
                return [m for m in mails if "belum teratasi" in m.text] or None

            [mail] = await wait_for(told_the_opd, timeout=30)
            assert reason in mail.text
            # Read once the OPD was told: the reopening is on the topic by then (the relay
            # publishes after the request is answered).
            [(record, event)] = events_of(
                await read_topic(rig.infra.kafka_bootstrap, "complaints.events"),
                tracking_code=code,
                status="in_progress",
            )
            assert reason not in record.value.decode() and event["data"]["sealed_reason"]["key_id"]


async def test_gateway_failures_are_retried_then_delivered_or_given_up(rig: Rig) -> None:
    flaky, dead = unique_phone(), unique_phone()
    rig.gateway.fail_next(2, to=flaky)
    rig.gateway.fail_always(to=dead)
    app = rig.build()
    async with running(app) as api:
        first, second = verified(rig.platform, phone=flaky), verified(rig.platform, phone=dead)
        await rig.publish(first)
        await rig.publish(second)

        delivered = await wait_for(
            lambda: rig.status_is("source_event_id = $1", first.id, status="delivered"),
            timeout=30,
        )
        failed = await wait_for(
            lambda: rig.status_is("source_event_id = $1", second.id, status="permanent-failure"),
            timeout=30,
        )
        ok, gave_up = delivered[0], failed[0]
        assert ok["channel"] == "whatsapp" and ok["attempt"] == 3
        assert await rig.history(ok["id"]) == RETRIED_TWICE
        assert len(rig.gateway.requests_to(flaky)) == 3 and len(rig.gateway.delivered_to(flaky)) == 1
        message = rig.gateway.delivered_to(flaky)[0]
        assert message.channel == "whatsapp" and message.body["reference"] == str(ok["id"])
        assert message.authorization == f"Bearer {GATEWAY_TOKEN}"
        assert first.data["tracking_code"] in (message.message or "")

        assert gave_up["attempt"] == 3 and "gave up after 3 attempts" in gave_up["last_error"]
        assert dead not in gave_up["last_error"]
        assert len(rig.gateway.requests_to(dead)) == 3 and not rig.gateway.delivered_to(dead)

        ok_events = await rig.bus_events(ok["id"], 7)
        assert [e["data"]["status"] for e in ok_events] == RETRIED_TWICE
        assert ok_events[-1]["data"]["attempt"] == 3
        dead_events = await rig.bus_events(gave_up["id"], 7)
        assert dead_events[-1]["type"] == f"{notification_events.PREFIX}permanent_failure.v1"
        assert all(dead not in json.dumps(e) for e in dead_events)

        whatsapp = {"channel": "whatsapp", "template": "complaints/verified"}
        assert metric(app, "sinergi_notifications_sent_total", **whatsapp) >= 1
        failures = metric(app, "sinergi_notifications_failed_total", **whatsapp, status="permanent-failure")
        assert failures >= 1

        # An officer finds the failed ones (of any failing status) and resends once the
        # gateway works again.
        rig.gateway.reset_failures()
        headers = officer_headers("notification_officer", subject="petugas-notif")
        failing = {"status": ["permanent-failure", "technical-failure", "temporary-failure"]}
        listed = (await api.get("/notifications", params=failing, headers=headers)).json()["items"]
        assert str(gave_up["id"]) in {n["id"] for n in listed} and str(ok["id"]) not in {
            n["id"] for n in listed
        }
        assert {n["status"] for n in listed} <= set(failing["status"])
        again = await api.post(f"/notifications/{gave_up['id']}/resend", headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "created" and again.json()["attempt"] == 0
        await wait_for(lambda: rig.status_is("id = $1", gave_up["id"], status="delivered"), timeout=30)
        assert len(rig.gateway.delivered_to(dead)) == 1
        conflict = await api.post(f"/notifications/{gave_up['id']}/resend", headers=headers)
        assert conflict.status_code == 409
        missing = await api.post(f"/notifications/{uuid.uuid4()}/resend", headers=headers)
        assert missing.status_code == 404


async def test_two_instances_share_the_partitions_and_deliver_each_notification_once(rig: Rig) -> None:
    settings = rig.settings()
    first, second = build_notifications(settings), build_notifications(settings)
    filed_type = f"{complaint_events.PREFIX}filed.v1"
    addresses: list[str] = []
    codes: list[str] = []  # this test's complaints (the shared topic holds other tests' too)

    def assigned(app: FastAPI) -> set[TopicPartition]:
        consumer = app.state.service.consumers[0].subscriber.consumer
        return set(consumer.assignment()) if consumer is not None else set()

    async def burst(n: int) -> None:
        for _ in range(n):
            addresses.append(unique_email())
            event = filed(rig.platform, email=addresses[-1])
            codes.append(event.data["tracking_code"])
            await rig.publish(event)

    async def delivered(n: int) -> bool:
        found = await db_fetch(
            rig.database,
            "SELECT count(*) AS n FROM notifications WHERE status = 'delivered' AND tracking_code = ANY($1)",
            codes,
        )
        return found[0]["n"] >= n

    first_running, second_running = running(first), running(second)
    await first_running.__aenter__()
    first_stopped = False
    try:
        await second_running.__aenter__()
        try:

            async def sharing() -> bool:
                a, b = assigned(first), assigned(second)
                return bool(a) and bool(b) and not (a & b)

            await wait_for(sharing, timeout=45)
            await burst(16)
            await wait_for(lambda: delivered(4), timeout=60)
            # One instance stops mid-stream; the other takes over its partitions.
            await first_running.__aexit__(None, None, None)
            first_stopped = True
            await burst(8)
            await wait_for(lambda: delivered(len(addresses)), timeout=90)
        finally:
            await second_running.__aexit__(None, None, None)
    finally:
        if not first_stopped:
            await first_running.__aexit__(None, None, None)

    consumed = [
        metric(app, "sinergi_consumer_events_total", consumer=rig.group, type=filed_type)
        for app in (first, second)
    ]
    assert all(n > 0 for n in consumed), f"both instances consumed: {consumed}"
    for address in addresses:
        assert len(rig.sink.messages_to(address)) == 1, address
    found = await rig.rows("tracking_code = ANY($1)", codes)
    assert len(found) == len(addresses) and all(r["status"] == "delivered" for r in found)
    deliveries = await db_fetch(
        rig.database,
        "SELECT h.notification_id, count(*) AS n FROM notification_history h"
        " JOIN notifications n ON n.id = h.notification_id"
        " WHERE h.status = 'delivered' AND n.tracking_code = ANY($1) GROUP BY h.notification_id",
        codes,
    )
    assert len(deliveries) == len(addresses) and all(r["n"] == 1 for r in deliveries)


async def test_quiet_hours_hold_a_non_urgent_message_and_let_an_urgent_one_through(rig: Rig) -> None:
    phone = unique_phone()
    nik = "3306065708900002"
    night = datetime(2026, 11, 2, 23, 0, tzinfo=UTC) - WIB  # 23:00 WIB
    clock = {"now": night}
    app = rig.build()
    app.state.service.context.clock = lambda: clock["now"]
    async with running(app) as api:
        anonymous = await api.put("/preferences", json={"nik": nik, "channels": ["sms"]})
        assert anonymous.status_code == 401, anonymous.text
        # Preferences hold for the contact proved when setting them: the phone messages go to.
        session = await open_session(api, phone, rig.sink, rig.gateway, nik=nik)
        code_messages = len(rig.gateway.delivered_to(phone))
        prefs = await api.put(
            "/preferences",
            headers=session,
            json={
                "nik": nik,
                "channels": ["sms", "email"],
                "locale": "en",
                "quiet_hours": {"start": "21:00", "end": "06:00"},
            },
        )
        assert prefs.status_code == 200, prefs.text
        assert prefs.json()["quiet_hours"] == {"start": "21:00", "end": "06:00"}
        looked_up = await api.post("/preferences/lookup", headers=session, json={"nik": nik})
        assert looked_up.json()["stored"] and looked_up.json()["channels"] == ["sms", "email"]
        bad = await api.put("/preferences", headers=session, json={"nik": "3306063208900001"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "nik"]
        stored = await db_fetch(rig.database, "SELECT citizen_ref FROM preferences")
        assert [r["citizen_ref"] for r in stored] == [
            citizen_ref(nik, rig.platform.citizen_ref_key.get_secret_value())
        ]

        quiet = verified(rig.platform, phone=phone, nik=nik)
        called = appointment_called(rig.platform, nik, phone, night)
        await rig.publish(quiet)
        await rig.publish(called, "health.events")

        urgent = await wait_for(lambda: rig.gateway.delivered_to(phone)[code_messages:], timeout=30)
        assert len(urgent) == 1 and urgent[0].channel == "sms"  # the citizen's first choice
        assert "A-012" in (urgent[0].message or "") and "called" in (urgent[0].message or "")  # English
        held = await wait_for(lambda: rig.rows("source_event_id = $1", quiet.id), timeout=30)
        assert held[0]["status"] == "created" and held[0]["locale"] == "en"
        assert held[0]["due_at"] == datetime(2026, 11, 3, 6, 0, tzinfo=UTC) - WIB
        created = await rig.bus_events(held[0]["id"], 1)
        assert created[0]["data"]["next_attempt_at"] is not None

        await wait_for(  # the held message is what the queue-depth gauge counts
            lambda: metric(app, "sinergi_notifications_queue_depth", channel="sms") == 1, timeout=30
        )
        latency = metric(app, "sinergi_notifications_delivery_latency_seconds_count", channel="sms")
        assert latency == 1  # the urgent one

        clock["now"] = datetime(2026, 11, 3, 6, 0, 5, tzinfo=UTC) - WIB  # the next morning
        await wait_for(lambda: rig.status_is("id = $1", held[0]["id"], status="delivered"), timeout=30)
        assert len(rig.gateway.delivered_to(phone)[code_messages:]) == 2


async def test_a_patient_whose_doctor_is_on_leave_is_told_and_offered_another_date(rig: Rig) -> None:
    phone = unique_phone()
    now = datetime.now(UTC)
    called = appointment_called(rig.platform, "3306065708900003", phone, now).data
    fields = {key: value for key, value in called.items() if key not in ("called_at", "called_by")}
    data = health_events.AppointmentSessionCancelled(
        **{**fields, "status": "cancelled", "task_id": 99},
        cancelled_at=now,
        cancelled_by="perawat-1",
        reason="dokter cuti",
    )
    app = rig.build(booking_url="https://sinergi.example/antrean")
    async with running(app):
        await rig.publish(
            envelope(data, data.appointment_id, health_events.SOURCE, rig.platform), "health.events"
        )
        [sent] = await wait_for(lambda: rig.gateway.delivered_to(phone), timeout=30)
    text = sent.message or ""
    assert data.booking_code in text and "dokter cuti" in text and "tanggal lain" in text
    assert "https://sinergi.example/antrean" in text


async def test_bad_input_dead_letters_unruled_events_are_counted_and_template_errors_are_recorded(
    rig: Rig, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    broken = templates / "id" / "complaints" / "verified.email.j2"
    broken.write_text("Subject: Diverifikasi {{ tracking_code }}\n\n{{ data.no_such_field }}\n")
    for old in (templates / "en" / "complaints").glob("verified.*"):
        old.unlink()  # English has no verified template any more: the generic one stands in
    app = rig.build(templates_dir=templates)
    async with running(app) as api:
        # An unknown type (or version) goes to the dead-letter topic with the reason.
        unknown = json.loads(verified(rig.platform, email=unique_email()).to_kafka().value)
        unknown["type"] = f"{complaint_events.PREFIX}verified.v9"
        await rig.producer.send_and_wait("complaints.events", json.dumps(unknown).encode(), key=b"k")
        await rig.producer.send_and_wait("complaints.events", b"{not json", key=b"k")
        # A valid event no rule names is only counted.
        await rig.publish(ward_changed(rig.platform, datetime.now(UTC)), "health.events")
        # A template error makes a technical-failure with the error, not a crash.
        email_id, email_en = unique_email(), unique_email()
        broken_event = verified(rig.platform, email=email_id)
        fallback_event = verified(rig.platform, email=email_en, locale="en")
        await rig.publish(broken_event)
        await rig.publish(fallback_event)

        letters = await wait_for(lambda: _letters(rig.infra, dead_letter_topic(rig.group), 2), timeout=30)
        reasons = sorted(dict(r.headers)["x-dlq-reason"].decode() for r in letters)
        assert reasons == ["invalid_cloudevent", "unknown_type"]
        ward_type = f"{health_events.WARD_PREFIX}bed_availability_changed.v1"
        # Counted, not notified (health.events is shared by the suite: other ward events count too).
        await wait_for(
            lambda: metric(app, "sinergi_notifications_unruled_events_total", type=ward_type) >= 1,
            timeout=30,
        )

        failed = await wait_for(
            lambda: rig.status_is("source_event_id = $1", broken_event.id, status="technical-failure"),
            timeout=30,
        )
        assert "UndefinedError" in failed[0]["last_error"] and "no_such_field" in failed[0]["last_error"]
        assert failed[0]["template"] == "id/complaints/verified.email.j2"
        assert await rig.history(failed[0]["id"]) == ["created", "technical-failure"]
        assert not rig.sink.messages_to(email_id)

        mails = await wait_for(lambda: rig.sink.messages_to(email_en), timeout=30)
        assert mails[0].subject.startswith("Service update") and mails[0].message["Content-Language"] == "en"
        fallback = metric(
            app,
            "sinergi_notifications_template_fallbacks_total",
            template="complaints/verified",
            channel="email",
            locale="en",
        )
        assert fallback == 1

        # The operator fixes the template (no restart) and an officer resends.
        broken.write_text((TEMPLATES / "id" / "complaints" / "verified.email.j2").read_text())
        headers = officer_headers("notification_officer")
        resent = await api.post(f"/notifications/{failed[0]['id']}/resend", headers=headers)
        assert resent.status_code == 202 and resent.json()["status"] == "created"
        mails = await wait_for(lambda: rig.sink.messages_to(email_id), timeout=30)
        assert broken_event.data["tracking_code"] in mails[0].subject

        async def delivered_total() -> int | None:
            # The sink has the mail a moment before the worker records `delivered`.
            search = await api.get(
                "/notifications",
                params={"status": "delivered", "event_type": f"{complaint_events.PREFIX}verified.v1"},
                headers=headers,
            )
            total = search.json()["total"]
            return total if total == 2 else None

        assert await wait_for(delivered_total, timeout=30) == 2
        rules = await api.get("/rules", headers=headers)
        assert rules.status_code == 200 and rules.json()["error"] is None


async def _letters(infra: Infrastructure, topic: str, n: int) -> list[Any] | None:
    records = await read_topic(infra.kafka_bootstrap, topic)
    return records if len(records) >= n else None


async def test_held_deliveries_wait_while_consumption_goes_on_and_go_out_when_resumed(rig: Rig) -> None:
    addresses = [unique_email() for _ in range(3)]
    events = [filed(rig.platform, email=address) for address in addresses]
    ids = [e.id for e in events]
    settings = rig.settings(delivery_paused=True)

    async def all_are(status: str) -> list[Any] | None:
        found = await rig.status_is("source_event_id = ANY($1)", ids, status=status)
        return found if found and len(found) == len(ids) else None

    paused = build_notifications(settings)
    async with running(paused) as api:
        for event in events:
            await rig.publish(event)
        await wait_for(lambda: all_are("created"), timeout=30)
        await asyncio.sleep(1.5)  # several rounds of the worker (every 0.2 s)
        assert await all_are("created")
        assert not any(rig.sink.messages_to(address) for address in addresses)
        state = await api.get("/delivery", headers=officer_headers("admin"))
        assert state.status_code == 200, state.text
        assert state.json()["paused"] is True and state.json()["queued"] == {"email": 3}
        await wait_for(
            lambda: metric(paused, "sinergi_notifications_delivery_held", channel="email") == 1,
            timeout=15,
        )

    # Resumed (the setting back to false): what waited goes out, once each.
    resumed = build_notifications(settings.model_copy(update={"delivery_paused": False}))
    async with running(resumed):
        delivered = await wait_for(lambda: all_are("delivered"), timeout=30)
    for address in addresses:
        assert len(rig.sink.messages_to(address)) == 1
    for row in delivered:
        assert await rig.history(row["id"]) == ["created", "sending", "delivered"]


async def test_an_operator_holds_one_channel_at_runtime_and_lifts_the_hold(rig: Rig) -> None:
    app = rig.build()
    operator = officer_headers("admin", subject="operator-1")
    async with running(app) as api:
        hold = {"reason": "WhatsApp gateway incident"}
        refused = await api.put(
            "/delivery/holds/whatsapp", json=hold, headers=officer_headers("notification_officer")
        )
        assert refused.status_code == 403
        assert (await api.put("/delivery/holds/fax", json=hold, headers=operator)).status_code == 422
        held = await api.put("/delivery/holds/whatsapp", json=hold, headers=operator)
        assert held.status_code == 204, held.text

        phone, email = unique_phone(), unique_email()
        waiting, going = verified(rig.platform, phone=phone), verified(rig.platform, email=email)
        await rig.publish(waiting)
        await rig.publish(going)
        await wait_for(lambda: rig.sink.messages_to(email), timeout=30)  # email is not held
        await asyncio.sleep(1.0)
        (row,) = await wait_for(lambda: rig.rows("source_event_id = $1", waiting.id), timeout=30)
        assert row["channel"] == "whatsapp" and row["status"] == "created"
        assert not rig.gateway.requests_to(phone)
        state = (await api.get("/delivery", headers=operator)).json()
        assert state["paused"] is False and state["queued"].get("whatsapp") == 1
        assert [(h["channel"], h["reason"], h["held_by"]) for h in state["holds"]] == [
            ("whatsapp", "WhatsApp gateway incident", "operator-1")
        ]

        lifted = await api.delete("/delivery/holds/whatsapp", headers=operator)
        assert lifted.status_code == 204, lifted.text
        await wait_for(lambda: rig.gateway.delivered_to(phone), timeout=30)
        await wait_for(lambda: rig.status_is("id = $1", row["id"], status="delivered"), timeout=30)
        assert (await api.delete("/delivery/holds/whatsapp", headers=operator)).status_code == 404
        trail = (await api.get("/admin/audit", params={"subject": "operator-1"}, headers=operator)).json()
        assert {(a["method"], tuple(a["aggregates"])) for a in trail} == {
            ("PUT", ("delivery:whatsapp",)),
            ("DELETE", ("delivery:whatsapp",)),
        }
