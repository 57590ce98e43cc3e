"""The integration view against the real broker and PostgreSQL.

Most tests publish events built from the pydantic contracts (`make_envelope(...).to_kafka()`)
with a plain aiokafka producer onto topics of their own, so they control order,
duplicates and timing and do not see other tests' events; one test runs the complaints
service in-process and follows its real events on `complaints.events`.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.complaints.app import ComplaintsSettings
from services.complaints.app import build as build_complaints
from services.integration import repository
from services.integration.app import build
from shared.kit.citizen import DEV_SIGNING_KEY, CitizenSessions, LocalKeys, SessionSigner
from shared.kit.settings import PlatformSettings
from shared.kit.web import PAGE_CSP
from shared.runtime.select import Infrastructure
from shared.schemas import Envelope
from shared.schemas.registry import DOMAIN_TOPICS
from tests.harness import db_fetch, metric, new_database, officer_headers, running, send_event, wait_for
from tests.integration.test_complaints_service import file as file_complaint
from tests.view_support import (
    CONTACT_1,
    CONTACT_2,
    NIK_1,
    REF_1,
    REF_2,
    Complaint,
    appointment_events,
    erasure,
    new_code,
    notification_events,
    permit_events,
    view_settings,
    ward_event,
)

JAKARTA = ZoneInfo("Asia/Jakarta")


@dataclass
class View:
    client: httpx.AsyncClient
    app: Any
    database: str
    group: str
    topics: dict[str, str]  # domain topic -> this test's topic
    producer: AIOKafkaProducer
    signer: SessionSigner  # signs citizen sessions the view accepts
    sent: list[Envelope] = field(default_factory=list)

    async def send(self, envelope: Envelope, topic: str, *, wait: bool = True) -> None:
        """Publish one event; with wait=False it is batched with the next ones (like the
        outbox relay's batches) until `flush`."""
        await send_event(self.producer, self.topics[topic], envelope, wait=wait)
        self.sent.append(envelope)

    async def flush(self) -> None:
        await self.producer.flush()

    async def applied(self) -> int:
        return int(await db_fetch_val(self.database, "SELECT count(*) FROM history"))

    async def settle(self, expected: int, timeout: float = 30) -> None:
        async def done() -> bool:
            return await self.applied() >= expected

        await wait_for(done, timeout=timeout)

    def metric(self, name: str, **labels: str) -> float:
        return metric(self.app, name, **labels)

    def session(self, contact: str) -> dict[str, str]:
        """The Authorization header of a citizen session proving `contact` (a reference)."""
        token, _ = self.signer.issue(
            contact_ref=contact, kind="phone", citizen_ref=REF_1, now=int(time.time()), minutes=30
        )
        return {"Authorization": f"Bearer {token}"}

    async def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        pool = self.app.state.service.pool
        async with pool.acquire() as conn:
            return await repository.ReadModel(conn).snapshot()


async def db_fetch_val(url: str, query: str) -> Any:
    return (await db_fetch(url, query))[0][0]


@pytest.fixture
async def view(infra: Infrastructure, platform: PlatformSettings, fresh_database: str) -> AsyncIterator[View]:
    settings = await view_settings(infra, platform, fresh_database, "it", feed_poll_seconds=0.2)
    app = build(settings)
    # Sessions as the notification service signs them (its development key, its issuer).
    signer = SessionSigner(DEV_SIGNING_KEY, platform.citizen_issuer)
    app.state.citizen_sessions = CitizenSessions(platform, LocalKeys(signer.jwks()))
    topics = dict(zip(DOMAIN_TOPICS, settings.topics, strict=True))
    async with AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap) as producer, running(app) as client:
        yield View(client, app, fresh_database, settings.consumer_group, topics, producer, signer)


def base_time() -> datetime:
    """A moment shortly before now, inside today's (and so this week's and month's)
    reporting period in Purworejo: wait past local midnight if needed."""
    now = datetime.now(UTC)
    midnight = now.astimezone(JAKARTA).replace(hour=0, minute=0, second=0, microsecond=0)
    into_day = (now - midnight).total_seconds()
    if into_day < 180:  # pragma: no cover - only just after midnight
        import time

        time.sleep(180 - into_day)
        now = datetime.now(UTC)
    return now - timedelta(seconds=150)


@dataclass
class Scenario:
    road: Complaint  # resolved within SLA by DPUPR
    waste: Complaint  # resolved by DLH after an SLA breach
    flood: Complaint  # open, confidential
    lamp: Complaint  # open, anonymous
    permit: str
    booking: str
    events: list[tuple[Envelope, str]]


def scenario(t: datetime) -> Scenario:
    s = lambda n: t + timedelta(seconds=n)  # noqa: E731
    road = Complaint(new_code("ADU"), "jalan_rusak", "mobility", REF_1, contact=CONTACT_1)
    waste = Complaint(new_code("ADU"), "sampah", "environment", REF_2, desa="33.06.02.2001")
    flood = Complaint(new_code("ADU"), "banjir_drainase", "environment", REF_2, confidential=True)
    lamp = Complaint(new_code("ADU"), "lampu_jalan", "mobility", None, contact=CONTACT_2)
    permit, booking = new_code("IZN"), new_code("KES")
    C, P, H, N = "complaints.events", "permits.events", "health.events", "notifications.events"
    events: list[tuple[Envelope, str]] = [
        (road.filed(s(0)), C),
        (road.verified(s(5)), C),
        (road.dispatched(s(10), "DPUPR"), C),
        (road.resolved(s(20), "DPUPR"), C),
        (waste.filed(s(1), "Sampah menumpuk di pasar"), C),
        (waste.dispatched(s(6), "DLH"), C),
        (waste.breached(s(11), "DLH"), C),
        (waste.resolved(s(21), "DLH"), C),
        (flood.filed(s(2), "Banjir di rumah saya"), C),
        (lamp.filed(s(3), "Lampu jalan mati"), C),
        *((e, P) for e in permit_events(permit, REF_1, s(0), CONTACT_1)),
        *((e, H) for e in appointment_events(booking, REF_1, s(0), CONTACT_1)),
        (ward_event(10, s(1)), H),
        (ward_event(6, s(30)), H),
        *((e, N) for e in notification_events(road.code, REF_1, s(25))),
    ]
    return Scenario(road, waste, flood, lamp, permit, booking, events)


def indicators_by_code(dimensions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for d in dimensions for p in d["programmes"] for i in p["indicators"]}


# ----- tests ----------------------------------------------------------------------------


async def test_events_from_all_domains_build_timeline_opd_and_dimension_figures(view: View) -> None:
    sc = scenario(base_time())
    for envelope, topic in sc.events:
        await view.send(envelope, topic)
    await view.settle(len(sc.events))
    client = view.client

    # Tracking by code: status and what happened to the case, one entry per step in the
    # citizen's words; the SMS sent about it (created, sending, delivered) is no step.
    tracked = (await client.get(f"/api/track/{sc.road.code.lower()}")).json()
    assert tracked["status"] == "resolved" and tracked["phase"] == "done" and tracked["opd"] == "DPUPR"
    assert [h["action"] for h in tracked["history"]] == ["filed", "verified", "dispatched", "resolved"]
    assert [h["label"] for h in tracked["history"]] == [
        "Pengaduan Anda diterima",
        "Petugas memeriksa pengaduan Anda",
        "Pengaduan diteruskan ke OPD yang menangani",
        "Pengaduan selesai ditangani",
    ]
    assert tracked["title"] == "Jalan berlubang di depan balai desa"
    flood = await client.get(f"/api/track/{sc.flood.code}")
    assert flood.json()["confidential"] is True and flood.json()["title"] is None
    assert "Banjir di rumah saya" not in flood.text
    for response in (tracked, flood.json()):
        assert REF_1 not in str(response) and REF_2 not in str(response)
    assert (await client.get("/api/track/ADU-0000-XXXXXX")).status_code == 404
    booking = (await client.get(f"/api/track/{sc.booking}", params={"lang": "en"})).json()
    assert (
        booking["status"] == "in_service"
        and booking["history"][1]["label"] == "You checked in at the counter"
    )

    # A citizen's timeline across complaints, permits, appointments and notifications.
    url = f"/api/officer/citizens/{REF_1}/timeline"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=officer_headers("opd_officer", opd="DLH"))).status_code == 403
    timeline = (await client.get(url, headers=officer_headers("coordinator"))).json()
    assert {i["code"] for i in timeline["items"]} == {sc.road.code, sc.permit, sc.booking}
    assert {e["domain"] for e in timeline["timeline"]} == {"complaints", "permits", "health", "notifications"}
    assert len(timeline["timeline"]) == 4 + 3 + 3 + 3
    by_nik = await client.post("/api/officer/timeline", json={"citizen": NIK_1}, headers=officer_headers())
    assert by_nik.status_code == 200 and by_nik.json()["citizen_ref"] == REF_1
    bad = await client.post(
        "/api/officer/timeline", json={"citizen": "3306063208900001"}, headers=officer_headers()
    )
    assert bad.status_code == 422 and "3306063208900001" not in bad.text

    # Per OPD: open items, SLA compliance from sla_breached events, median handling time, breaches.
    opds = {o["opd"]: o for o in (await client.get("/api/opds")).json()}
    assert opds["DPUPR"]["done"] == 1 and opds["DPUPR"]["compliance"] == 1.0
    assert opds["DLH"]["done"] == 1 and opds["DLH"]["compliance"] == 0.0 and opds["DLH"]["breaches"] == 1
    assert opds["DPMPTSP"]["done"] == 1 and opds["DPMPTSP"]["within_sla"] == 1
    assert opds["DPUPR"]["median_handling_hours"] == pytest.approx(20 / 3600)

    # Per kecamatan and desa.
    regions = {r["code"]: r for r in (await client.get("/api/regions")).json()}
    assert len(regions) == 16
    assert regions["33.06.01"]["by_domain"]["complaints"] == {"open": 2, "total": 3}
    assert regions["33.06.06"]["by_domain"]["permits"]["total"] == 1
    assert regions["33.06.06"]["by_domain"]["health"] == {"open": 1, "total": 1}
    desa = (await client.get("/api/regions/33.06.02")).json()["desa"]
    assert desa[0]["code"] == "33.06.02.2001" and desa[0]["by_category"]["sampah"]["total"] == 1

    # Per smart-city dimension: the masterplan's indicators computed from the events.
    dashboard = (await client.get("/api/dashboard")).json()
    assert dashboard["lag"] and all(behind >= 0 for behind in dashboard["lag"].values())
    values = {code: i["actual"] for code, i in indicators_by_code(dashboard["dimensions"]).items()}
    assert values["complaints_within_sla"] == 0.5
    assert values["business_permits_issued"] == 1
    assert values["permits_within_sla"] == 1.0
    assert values["road_transport_complaints_open"] == 1  # the lamp; the road one is resolved
    assert values["waste_flood_complaints_open"] == 1  # the flood; the waste one is resolved
    assert values["median_appointment_wait"] == pytest.approx(0.5)  # 30 s, in minutes
    assert values["bed_availability"] == pytest.approx(6 / 40)  # the newest ward event counts
    assert values["notification_reach"] == 1.0
    assert values["digital_service_users"] == 2
    sla = indicators_by_code(dashboard["dimensions"])["complaints_within_sla"]
    assert sla["assessment"] == "not_met" and sla["target"] == 0.8 and len(sla["trend"]) == 6
    dims = {d["code"]: d for d in dashboard["dimensions"]}
    assert set(dims) == {"governance", "economy", "mobility", "environment", "people", "living"}
    assert dims["mobility"]["items_open"] == 1 and dims["environment"]["items_open"] == 1
    assert dims["economy"]["programmes"][0]["rpjmd"] == "2.18.04"
    assert sum(d["total"] for d in dashboard["daily"]) == len(sc.events)

    # The public feed: no citizen reference, masked codes, no confidential title, and the
    # title of a complaint only once an officer has verified it (the lamp's is unread).
    feed = (await client.get("/api/feed", params={"limit": 200})).json()
    assert len(feed) == len(sc.events)
    text = str(feed)
    assert REF_1 not in text and REF_2 not in text and sc.road.code not in text
    assert "Banjir di rumah saya" not in text and "Sampah menumpuk di pasar" in text
    assert "Lampu jalan mati" not in text
    lamp = await client.get(f"/api/track/{sc.lamp.code}")
    assert lamp.json()["status"] == "submitted" and lamp.json()["title"] is None
    assert "Lampu jalan mati" not in (await client.get("/lacak", params={"kode": sc.lamp.code})).text

    # The pages, in Indonesian and English, render the same figures without JavaScript.
    page = await client.get("/")
    assert page.status_code == 200 and "Dimensi kota cerdas" in page.text
    assert 'data-indicator="complaints_within_sla"' in page.text and "50,0%" in page.text
    assert REF_1 not in page.text and sc.road.code not in page.text
    english = await client.get("/", headers={"accept-language": "en-US,en;q=0.9"})
    assert "Smart-city dimensions" in english.text and "50.0%" in english.text
    lacak = await client.get("/lacak", params={"kode": sc.road.code})
    assert (
        lacak.status_code == 200
        and 'data-status="resolved"' in lacak.text
        and "Pengaduan selesai ditangani" in lacak.text
    )
    assert "Notifikasi" not in lacak.text.split('id="riwayat"')[1]
    assert (await client.get("/lacak", params={"kode": "ADU-0000-XXXXXX"})).status_code == 404
    token = officer_headers("coordinator")["Authorization"].split()[1]
    officer_page = await client.get("/petugas", params={"token": token, "ref": REF_1})
    assert (
        officer_page.status_code == 200 and sc.permit in officer_page.text and sc.booking in officer_page.text
    )
    posted = await client.post(
        "/petugas",
        content=f"token={token}&ref={NIK_1}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200 and sc.road.code in posted.text and NIK_1 not in posted.text
    assert (await client.get("/petugas", params={"token": "nope", "ref": REF_1})).status_code == 401
    assert (await client.get("/wilayah/33.06.01")).status_code == 200
    assert "/api/dashboard" in (await client.get("/openapi.json")).json()["paths"]

    # Every page, its refusals and the JSON answers carry the strict policy; the API
    # documentation (Swagger UI, inline scripts from a CDN) does not.
    for path in (
        "/",
        "/lacak?kode=ADU-0000-XXXXXX",
        "/lacak?kode=%21",
        "/petugas",
        "/wilayah/99",
        "/nowhere",
    ):
        answer = await client.get(path)
        assert answer.headers["content-security-policy"] == PAGE_CSP, path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
    assert "content-security-policy" not in (await client.get("/docs")).headers


async def test_replay_equals_live_and_a_duplicate_changes_nothing(view: View) -> None:
    sc = scenario(base_time())
    events = sc.events[:]
    random.Random(11).shuffle(events)  # out of order across aggregates ...
    late_verify = sc.road.verified(events[0][0].time - timedelta(seconds=1))
    for envelope, topic in events:
        await view.send(envelope, topic, wait=False)  # several events per partition per batch
    await view.flush()
    await view.send(late_verify, "complaints.events")  # ... and an old event arriving last
    total = len(events) + 1
    await view.settle(total)
    road = (await view.client.get(f"/api/track/{sc.road.code}")).json()
    assert road["status"] == "resolved"  # the late, older event did not move it back
    live = await view.snapshot()
    contacts = {i["code"]: i["contact_ref"] for i in live["items"] if i["contact_ref"]}
    assert contacts == {
        sc.road.code: CONTACT_1,
        sc.permit: CONTACT_1,
        sc.booking: CONTACT_1,
        sc.lamp.code: CONTACT_2,
    }

    # A redelivered event (same id) is recognised by the inbox and changes nothing.
    duplicates = view.metric("sinergi_inbox_duplicates_skipped_total", consumer=view.group)
    await view.send(*events[3])
    await wait_for(
        lambda: view.metric("sinergi_inbox_duplicates_skipped_total", consumer=view.group) > duplicates,
        timeout=30,
    )
    assert await view.snapshot() == live

    # Rebuild from the topics (truncate, re-read from the beginning): identical read models.
    last_live_seq = await db_fetch_val(view.database, "SELECT max(seq) FROM history")
    assert (
        await view.client.post("/admin/rebuild", headers=officer_headers("coordinator"))
    ).status_code == 403
    rebuilt = await view.client.post("/admin/rebuild", headers=officer_headers("admin"))
    assert rebuilt.status_code == 200, rebuilt.text
    body = rebuilt.json()
    assert body["complete"] is True and body["records"] == total + 1  # the duplicate record too
    assert await view.snapshot() == live
    # ... and really rebuilt: every row was written again (new arrival sequence numbers).
    assert await db_fetch_val(view.database, "SELECT min(seq) FROM history") > last_live_seq
    inbox = await db_fetch(view.database, "SELECT count(*) FROM inbox WHERE consumer = $1", view.group)
    assert inbox[0][0] == total


async def test_dead_letters_are_replayed_through_the_kit(view: View, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = scenario(base_time())
    envelope, topic = sc.events[0]
    # Both the batch path and the record-by-record fallback write through apply_many.
    original = repository.ReadModel.apply_many

    async def failing(self: repository.ReadModel, projections: Any) -> int:
        if any(p.history.event_id == envelope.id for p in projections):
            raise RuntimeError("projection bug")
        return await original(self, projections)

    monkeypatch.setattr(repository.ReadModel, "apply_many", failing)
    await view.send(envelope, topic)
    await view.send(*sc.events[1])
    await wait_for(
        lambda: view.metric("sinergi_dead_letters_total", consumer=view.group, reason="handler_error") >= 1,
        timeout=30,
    )
    await view.settle(1)
    assert (await view.client.get(f"/api/track/{sc.road.code}")).json()["history"][0]["action"] == "verified"

    admin = officer_headers("admin")
    listed = (await view.client.get("/admin/dead-letters", headers=admin)).json()
    [letter] = listed[view.group]
    assert (letter["event_id"], letter["event_type"], letter["reason"]) == (
        envelope.id,
        envelope.type,
        "handler_error",
    )
    assert (
        letter["topic"].endswith(topic) and letter["applied"] is False and "projection bug" in letter["error"]
    )
    one = {"partition": letter["partition"], "offset": letter["offset"]}
    half = await view.client.post("/admin/dead-letters/replay", params={"offset": 0}, headers=admin)
    assert half.status_code == 422 and half.json()["detail"][0]["loc"] == ["query", "partition"]
    # Still broken: the chosen letter fails again and is dead-lettered anew.
    again = await view.client.post("/admin/dead-letters/replay", params=one, headers=admin)
    assert again.status_code == 200 and again.json() == {view.group: 1}
    await wait_for(
        lambda: view.metric("sinergi_dead_letters_total", consumer=view.group, reason="handler_error") >= 2,
        timeout=30,
    )

    monkeypatch.setattr(repository.ReadModel, "apply_many", original)  # the fix
    replayed = await view.client.post("/admin/dead-letters/replay", params=one, headers=admin)
    assert replayed.status_code == 200 and replayed.json() == {view.group: 1}
    listed = (await view.client.get("/admin/dead-letters", headers=admin)).json()[view.group]
    assert len(listed) == 2 and all(letter["applied"] for letter in listed)
    history = (await view.client.get(f"/api/track/{sc.road.code}")).json()["history"]
    assert [h["action"] for h in history] == ["filed", "verified"]


async def test_real_complaint_events_reach_the_dashboard(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> None:
    """The complaints service in-process publishes real events on complaints.events;
    the view (its own group and database) follows them."""
    complaints = build_complaints(
        ComplaintsSettings(database_url=await new_database(infra), platform=platform, sla_check_seconds=3600)
    )
    # The real topic (other tests' complaints are on it too).
    settings = await view_settings(infra, platform, fresh_database, "real", topics=["complaints.events"])
    async with running(complaints) as c, running(build(settings)) as v:
        code = await file_complaint(c, reporter={"nik": NIK_1, "phone": "081234567890"})
        coordinator = officer_headers("coordinator")
        assert (await c.post(f"/officer/complaints/{code}/verify", headers=coordinator)).status_code == 200
        assert (
            await c.post(f"/officer/complaints/{code}/dispatch", json={"opd": "DPUPR"}, headers=coordinator)
        ).status_code == 200

        async def dispatched() -> dict[str, Any] | None:
            response = await v.get(f"/api/track/{code}")
            return (
                response.json()
                if response.status_code == 200 and response.json()["status"] == "dispatched"
                else None
            )

        tracked = await wait_for(dispatched, timeout=45)
        assert [h["action"] for h in tracked["history"]] == ["filed", "verified", "dispatched"]
        timeline = (
            await v.get(f"/api/officer/citizens/{REF_1}/timeline", headers=officer_headers("coordinator"))
        ).json()
        assert code in {i["code"] for i in timeline["items"]}
        # The open road complaint counts in the mobility indicator (other tests' complaints
        # on the same topic may count too).
        after = (await v.get("/api/dimensions")).json()
        assert indicators_by_code(after)["road_transport_complaints_open"]["actual"] >= 1
        page = await v.get("/lacak", params={"kode": code})
        assert page.status_code == 200 and 'data-status="dispatched"' in page.text


async def test_a_session_lists_what_was_started_with_its_contact_until_the_citizen_is_erased(
    view: View,
) -> None:
    """GET /citizen/services: the complaints, applications and appointments whose starting
    event carries the session's contact reference, newest first, in plain words; not
    those of the same NIK given with another contact, nor a booking of a producer that
    sends no contact reference. An erasure of the citizen takes them off the list."""
    t = base_time()
    s = lambda n: t + timedelta(seconds=n)  # noqa: E731
    road = Complaint(new_code("ADU"), "jalan_rusak", "mobility", REF_1, contact=CONTACT_1)
    elsewhere = Complaint(new_code("ADU"), "sampah", "environment", REF_1, contact=CONTACT_2)
    permit, booking, older_booking = new_code("IZN"), new_code("KES"), new_code("KES")
    events: list[tuple[Envelope, str]] = [
        (road.filed(s(0)), "complaints.events"),
        (road.resolved(s(50), "DPUPR"), "complaints.events"),
        (elsewhere.filed(s(3)), "complaints.events"),
        *((e, "permits.events") for e in permit_events(permit, REF_1, s(1), CONTACT_1)),
        *((e, "health.events") for e in appointment_events(booking, REF_1, s(2), CONTACT_1)),
        *((e, "health.events") for e in appointment_events(older_booking, REF_1, s(4))),
    ]
    for envelope, topic in events:
        await view.send(envelope, topic)
    await view.settle(len(events))
    mine = await view.client.get("/citizen/services", headers=view.session(CONTACT_1))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["total"], body["page"], body["page_size"]) == (3, 1, 20)
    assert [(i["code"], i["kind"], i["service"], i["status_label"]) for i in body["items"]] == [
        (booking, "appointment", "Poli Penyakit Dalam", "Sedang dilayani"),
        (permit, "application", "Perizinan berusaha (OSS-RBA)", "Izin terbit"),
        (road.code, "complaint", "Jalan dan jembatan rusak", "Selesai ditangani"),
    ]
    assert body["items"][2]["updated_at"] > body["items"][2]["filed_at"]  # the resolution
    theirs = (await view.client.get("/api/citizen/services", headers=view.session(CONTACT_2))).json()
    assert [i["code"] for i in theirs["items"]] == [elsewhere.code]
    # One item by its code, as typed: only when this contact started it.
    one = await view.client.get(
        "/citizen/services", params={"code": road.code.lower()}, headers=view.session(CONTACT_1)
    )
    assert [(i["code"], i["kind"]) for i in one.json()["items"]] == [(road.code, "complaint")]
    for contact, code in ((CONTACT_2, road.code), (CONTACT_1, elsewhere.code), (CONTACT_1, "bukan kode")):
        other = await view.client.get(
            "/citizen/services", params={"code": code}, headers=view.session(contact)
        )
        assert (other.status_code, other.json()["items"], other.json()["total"]) == (200, [], 0)

    await view.send(erasure(REF_1, s(60)), "complaints.events")
    await view.settle(len(events) + 1)
    erased = await view.client.get("/citizen/services", headers=view.session(CONTACT_1))
    assert (erased.status_code, erased.json()["items"], erased.json()["total"]) == (200, [], 0)
    live = await view.snapshot()
    assert (await view.client.post("/admin/rebuild", headers=officer_headers("admin"))).status_code == 200
    assert await view.snapshot() == live


async def test_an_erasure_naming_a_contact_drops_what_was_filed_with_it_alone_in_any_order(
    view: View,
) -> None:
    """What was filed without a NIK (an anonymous complaint) is keyed by its contact only:
    an erasure naming that contact's reference drops it from the contact's list, with its
    title, also when the erasure is read before the filing (a rebuild's order); what the
    contact filed after the erasure, and another contact's, stay."""
    t = base_time()
    s = lambda n: t + timedelta(seconds=n)  # noqa: E731
    before = Complaint(new_code("ADU"), "jalan_rusak", "mobility", None, contact=CONTACT_1)
    late = Complaint(new_code("ADU"), "sampah", "environment", None, contact=CONTACT_1)
    after = Complaint(new_code("ADU"), "sampah", "environment", None, contact=CONTACT_1)
    other = Complaint(new_code("ADU"), "sampah", "environment", None, contact=CONTACT_2)
    events = [
        before.filed(s(0), "Jalan rusak di depan rumah Bu Sri"),
        other.filed(s(1)),
        erasure(REF_2, s(30), (CONTACT_1,)),
        late.filed(s(10), "Sampah di depan rumah Bu Sri"),  # read after, though filed before
        after.filed(s(40)),
    ]
    for envelope in events:
        await view.send(envelope, "complaints.events")
    await view.settle(len(events))

    mine = (await view.client.get("/api/citizen/services", headers=view.session(CONTACT_1))).json()
    assert [i["code"] for i in mine["items"]] == [after.code]
    theirs = (await view.client.get("/api/citizen/services", headers=view.session(CONTACT_2))).json()
    assert [i["code"] for i in theirs["items"]] == [other.code]
    left = await db_fetch(
        view.database,
        "SELECT code FROM items WHERE code = ANY($1::text[])"
        " AND (contact_ref IS NOT NULL OR title IS NOT NULL OR sealed_title IS NOT NULL)",
        [before.code, late.code],
    )
    assert left == []
    for code in (before.code, late.code):  # the public state stays
        assert (await view.client.get(f"/api/track/{code}")).json()["status"] == "submitted"

    live = await view.snapshot()
    assert (await view.client.post("/admin/rebuild", headers=officer_headers("admin"))).status_code == 200
    assert await view.snapshot() == live


async def test_an_erased_citizen_leaves_no_timeline_in_any_order(view: View) -> None:
    """id.sinergi.privacy.citizen.erased.v1: the view drops the citizen's reference and
    titles up to the erasure — also from events that arrive after it (as in a rebuild,
    where the old events still carry the reference) — and keeps later activity."""
    t = base_time()
    old = Complaint(new_code("ADU"), "sampah", "environment", REF_1)
    new = Complaint(new_code("ADU"), "jalan_rusak", "mobility", REF_1)
    permit = new_code("IZN")
    events: list[tuple[Envelope, str]] = [
        (erasure(REF_1, t + timedelta(seconds=30)), "complaints.events"),  # first, though it happened later
        (old.filed(t, "Sampah di depan rumah Pak Budi"), "complaints.events"),
        *((e, "permits.events") for e in permit_events(permit, REF_1, t + timedelta(seconds=1))),
        *(
            (e, "notifications.events")
            for e in notification_events(old.code, REF_1, t + timedelta(seconds=2))
        ),
        (new.filed(t + timedelta(seconds=40), "Jalan rusak lagi"), "complaints.events"),
    ]
    for envelope, topic in events:
        await view.send(envelope, topic)
    await view.settle(len(events))

    timeline = (
        await view.client.get(
            f"/api/officer/citizens/{REF_1}/timeline", headers=officer_headers("coordinator")
        )
    ).json()
    assert [i["code"] for i in timeline["items"]] == [new.code]
    assert [(e["code"], e["action"]) for e in timeline["timeline"]] == [(new.code, "filed")]
    tracked = (await view.client.get(f"/api/track/{old.code}")).json()
    assert tracked["status"] == "submitted" and tracked["title"] is None  # public state stays
    left = await db_fetch(
        view.database,
        "SELECT (SELECT count(*) FROM history WHERE citizen_ref = $1) AS history,"
        " (SELECT count(*) FROM items WHERE citizen_ref = $1) AS items,"
        " (SELECT count(*) FROM notifications WHERE citizen_ref = $1) AS notifications",
        REF_1,
    )
    assert dict(left[0]) == {"history": 1, "items": 1, "notifications": 0}
    feed = (await view.client.get("/api/feed", params={"limit": 50})).json()
    assert any(e["domain"] == "privacy" and e["action"] == "erased" for e in feed)
    assert REF_1 not in str(feed) and "Pak Budi" not in str(feed)

    live = await view.snapshot()
    assert (await view.client.post("/admin/rebuild", headers=officer_headers("admin"))).status_code == 200
    assert await view.snapshot() == live
