"""The permits service against the real broker and real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.permits import handlers
from services.permits.app import PermitsSettings, _refresh_gauges, build
from services.permits.domain import WIB
from shared.kit.codes import is_public_code, new_public_code
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from shared.schemas import CONTENT_TYPE, parse_record
from tests.citizen_support import minted_session, trust_development_sessions
from tests.harness import db_fetch, events_of, officer_headers, post_raw, read_topic, running, wait_for

TOPIC = "permits.events"
NIK = "3306061708900001"
NIB = "9120001234567"
PHONE_IN = "081234567890"
PHONE = "+6281234567890"
EMAIL = "pemohon@example.com"
PBG_DOCUMENTS = ["ktp", "bukti_tanah", "krk", "gambar_arsitektur", "gambar_struktur", "gambar_mep"]
BUSINESS_DOCUMENTS = ["ktp_penanggung_jawab", "npwp", "pernyataan_mandiri"]
OFFICER = officer_headers("permit_officer", subject="petugas-dpmptsp")


def pbg_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "permit_type": "pbg",
        "applicant": {"nik": NIK, "name": "Budi Santoso", "phone": PHONE_IN, "email": EMAIL},
        "desa_code": "33.06.01.2001",
        "details": {"building_function": "hunian", "building_area_m2": 120, "floors": 2},
        "documents": [{"code": code, "ref": f"dms://{code}/1"} for code in PBG_DOCUMENTS],
    }
    body.update(overrides)
    return body


def business_body(risk_level: str = "rendah", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "permit_type": "izin_usaha",
        "applicant": {"nib": NIB, "name": "CV Sari Rasa", "phone": PHONE_IN},
        "desa_code": "33.06.02.2001",
        "details": {"kbli": "56101", "risk_level": risk_level, "business_name": "Rumah Makan Sari Rasa"},
        "documents": [{"code": code, "ref": f"dms://{code}/1"} for code in BUSINESS_DOCUMENTS],
    }
    body.update(overrides)
    return body


def settings_for(database_url: str, platform: PlatformSettings) -> PermitsSettings:
    return PermitsSettings(
        database_url=database_url, platform=platform, sla_check_seconds=3600, expiry_check_seconds=3600
    )


@pytest.fixture
async def permits(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> AsyncIterator[tuple[httpx.AsyncClient, handlers.Context, str, FastAPI]]:
    app = trust_development_sessions(build(settings_for(fresh_database, platform)))
    async with running(app) as client:
        yield client, app.state.service.context, fresh_database, app


async def submit(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    response = await client.post("/applications", json=body or pbg_body())
    assert response.status_code == 201, response.text
    return response.json()["tracking_code"]


async def resubmit(
    client: httpx.AsyncClient,
    platform: PlatformSettings,
    code: str,
    documents: list[dict[str, str]],
    contact: str = EMAIL,
) -> httpx.Response:
    """Send documents again as the applicant: with a session of the email (or phone) the
    application gave."""
    headers = minted_session(platform, contact)
    return await client.post(
        f"/applications/{code}/resubmission", json={"documents": documents}, headers=headers
    )


async def act(client: httpx.AsyncClient, code: str, step: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/officer/applications/{code}/{step}", json=body, headers=OFFICER)
    assert response.status_code == 200, (step, response.text)
    return response.json()


def inspection_time(ctx: handlers.Context) -> str:
    """10:00 WIB on the next working day."""
    day = ctx.calendar.next_working_day(ctx.calendar.local_date(ctx.clock()))
    return datetime.combine(day, time(10, 0), tzinfo=WIB).isoformat()


def unique(found: list) -> list:
    """First copy of each event id, in topic order: what an idempotent consumer applies.
    The outbox relay publishes at least once (a relay stopped between the broker's ack and
    marking its rows published leaves them to be sent again), so copies may follow."""
    seen: set[str] = set()
    return [(r, e) for r, e in found if not (e["id"] in seen or seen.add(e["id"]))]


async def events_for(infra: Infrastructure, tracking_code: str, expected: int) -> list:
    """The application's events (one copy per event id) once `expected` have arrived."""

    async def enough() -> list | None:
        found = events_of(await read_topic(infra.kafka_bootstrap, TOPIC), tracking_code=tracking_code)
        return unique(found) if len(unique(found)) >= expected else None

    return await wait_for(enough, timeout=20)


def kinds(found: list) -> list[str]:
    return [e["type"].removeprefix("id.sinergi.permits.application.").removesuffix(".v1") for _, e in found]


async def test_whole_life_survives_a_restart_and_publishes_ordered_events_under_one_key(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> None:
    settings = settings_for(fresh_database, platform)
    first = trust_development_sessions(build(settings))
    async with running(first) as client:
        created = await client.post("/applications", json=pbg_body())
        assert created.status_code == 201, created.text
        code = created.json()["tracking_code"]
        assert is_public_code(code, "IZN")
        assert created.json()["sla_working_days"] == 28 and created.json()["deemed_approval"] is True

        await act(
            client,
            code,
            "document-check",
            {"outcome": "incomplete", "missing": ["krk"], "note": "KRK sudah kedaluwarsa"},
        )
        public = (await client.get(f"/applications/{code}")).json()
        assert public["status"] == "documents_incomplete" and public["missing_documents"] == ["krk"]
        assert public["sla"]["state"] == "paused" and public["sla"]["due_at"] is None

        resubmitted = await resubmit(client, platform, code, [{"code": "krk", "ref": "dms://krk/2"}])
        assert resubmitted.status_code == 200, resubmitted.text
        assert resubmitted.json()["sla"]["state"] == "on_track"
    # The service stops mid-life; a new instance on the same database carries on.
    second = build(settings)
    async with running(second) as client:
        ctx: handlers.Context = second.state.service.context
        await act(client, code, "document-check", {"outcome": "complete"})
        await act(
            client, code, "inspection", {"scheduled_for": inspection_time(ctx), "inspector": "Tim Teknis"}
        )
        await act(
            client, code, "inspection/result", {"result": "passed", "findings": "Sesuai gambar rencana"}
        )
        await act(client, code, "approve", {"note": "Memenuhi persyaratan teknis"})
        issued = await act(client, code, "issue", {})
        year = ctx.calendar.local_date(ctx.clock()).year
        assert issued["permit_number"] == f"503/PBG/00001/{year}"
        assert issued["status"] == "issued" and issued["valid_until"] is None  # PBG has no expiry

        found = await events_for(infra, code, 8)
        assert kinds(found) == [
            "submitted",
            "documents_incomplete",
            "resubmitted",
            "documents_verified",
            "inspection_scheduled",
            "inspection_recorded",
            "approved",
            "issued",
        ]
        application_id = (await db_fetch(fresh_database, "SELECT id FROM applications"))[0]["id"]
        assert {r.key for r, _ in found} == {str(application_id).encode()}
        assert len({r.partition for r, _ in found}) == 1
        assert [r.offset for r, _ in found] == sorted(r.offset for r, _ in found)
        assert len(found) == 8  # nothing lost across the restart, nothing extra
        for record, event in found:
            assert dict(record.headers)["content-type"] == CONTENT_TYPE.encode()
            assert event["subject"] == str(application_id) == event["data"]["application_id"]
            assert event["data"]["citizen_ref"].startswith("cr1_")
            assert event["data"]["dimension"] == "living"
            for secret in (NIK, PHONE, PHONE_IN, EMAIL):
                assert secret.encode() not in record.value
            assert parse_record(record.value).envelope.id == event["id"]
        assert found[-1][1]["data"]["permit_number"] == issued["permit_number"]

        public = await client.get(f"/applications/{code.lower()}")
        assert public.status_code == 200
        text = public.text
        assert NIK not in text and PHONE not in text and EMAIL not in text and "Budi" not in text
        assert [h["action"] for h in public.json()["history"]] == [
            "submitted",
            "documents_incomplete",
            "resubmitted",
            "documents_verified",
            "inspection_scheduled",
            "inspection_recorded:passed",
            "approved",
            "issued",
        ]
        verified = await client.get("/permits/verify", params={"number": issued["permit_number"]})
        assert verified.json()["valid"] is True and verified.json()["permit_type"] == "pbg"
        pending = await db_fetch(
            fresh_database, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
        )
        assert pending[0]["n"] == 0


def case(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`body` with nested changes, keys joined by `__` (`applicant__nik`); `...` deletes."""
    body = json.loads(json.dumps(body))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = body
        for part in path:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return body


async def test_bad_input_gets_field_level_422_never_500(permits, platform: PlatformSettings) -> None:
    client, ctx, _, _ = permits
    pbg, biz = pbg_body(), business_body()
    cases = {
        "day 32 in NIK": (case(pbg, applicant__nik="3306063208900001"), "nik"),
        "month 13 in NIK": (case(pbg, applicant__nik="3306061713900001"), "nik"),
        "15-digit NIK": (case(pbg, applicant__nik="330606170890000"), "nik"),
        "12-digit NIB": (case(biz, applicant__nib="912000123456"), "nib"),
        "NIB with a letter": (case(biz, applicant__nib="912000123456X"), "nib"),
        "both NIK and NIB": (case(biz, applicant__nik=NIK), "applicant"),
        "neither NIK nor NIB": (case(biz, applicant__nib=...), "applicant"),
        "no contact": (case(pbg, applicant__phone=..., applicant__email=...), "applicant"),
        "short phone": (case(pbg, applicant__phone="08123"), "phone"),
        "business licence with a NIK": (case(biz, applicant__nib=..., applicant__nik=NIK), "nib"),
        "4-digit KBLI": (case(biz, details__kbli="5610"), "kbli"),
        "KBLI not in the list": (case(biz, details__kbli="99999"), "kbli"),
        "unknown risk level": (case(biz, details__risk_level="ekstrem"), "risk_level"),
        "unknown permit type": (case(pbg, permit_type="izin_tambang"), "permit_type"),
        "unknown desa": (case(pbg, desa_code="33.06.99.2001"), "desa_code"),
        "desa outside Purworejo": (case(pbg, desa_code="33.05.01.2001"), "desa_code"),
        "missing floors": (case(pbg, details__floors=...), "floors"),
        "floors not a number": (case(pbg, details__floors="dua"), "floors"),
        "unknown detail": (case(pbg, details__colour="red"), "colour"),
        "documents incomplete": (case(pbg, documents=pbg["documents"][:3]), "documents"),
        "unknown document": (case(pbg, documents=[*pbg["documents"], {"code": "foto", "ref": "x"}]), "code"),
        "unknown field": (case(pbg, extra="x"), "extra"),
        "NUL in the name": (case(pbg, applicant__name="Budi\x00"), "body"),
        "bad renewal number": (case(pbg, renewal_of="IMB-123"), "renewal_of"),
    }
    for name, (body, field) in cases.items():
        response = await client.post("/applications", json=body)
        assert response.status_code == 422, (name, response.text)
        detail = response.json()["detail"]
        assert any(field in [str(p) for p in d["loc"]] for d in detail), (name, detail)
        assert NIK not in response.text and NIB not in response.text, name

    # Several problems are reported together.
    many = await client.post("/applications", json=case(biz, details__kbli="1", details__business_name=...))
    fields = {d["loc"][-1] for d in many.json()["detail"]}
    assert {"kbli", "business_name"} <= fields

    not_json = await client.post(
        "/applications", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    nan = await post_raw(
        client, "/applications", json.dumps(case(pbg, details__building_area_m2=float("nan"))).encode()
    )
    assert nan.status_code == 422 and "building_area_m2" in nan.text
    assert (await post_raw(client, "/applications", b"x" * 200_000)).status_code == 413
    for unknown in ("IZN-0000-XXXXXX", "nonsense", "IZN-2611-%00AAAA"):
        assert (await client.get(f"/applications/{unknown}")).status_code == 404, unknown

    code = await submit(client)
    checks = [
        ("document-check", {"outcome": "incomplete"}, "body"),
        ("document-check", {"outcome": "incomplete", "missing": ["sertifikat_halal"]}, "missing"),
        ("document-check", {"outcome": "complete", "missing": ["krk"]}, "missing"),
        ("document-check", {"outcome": "maybe"}, "outcome"),
        ("reject", {"reasons": []}, "reasons"),
    ]
    for step, body, field in checks:
        response = await client.post(f"/officer/applications/{code}/{step}", json=body, headers=OFFICER)
        assert response.status_code == 422, (step, body, response.text)
        assert any(field in [str(p) for p in d["loc"]] for d in response.json()["detail"]), (step, body)
    await act(client, code, "document-check", {"outcome": "complete"})
    today = ctx.calendar.local_date(ctx.clock())
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    weekend = await client.post(
        f"/officer/applications/{code}/inspection",
        json={"scheduled_for": f"{saturday}T10:00:00+07:00", "inspector": "Tim"},
        headers=OFFICER,
    )
    assert weekend.status_code == 422 and "working day" in weekend.text
    naive = await client.post(
        f"/officer/applications/{code}/inspection",
        json={"scheduled_for": f"{saturday}T10:00:00", "inspector": "Tim"},
        headers=OFFICER,
    )
    assert naive.status_code == 422

    returned = await submit(client)
    await act(client, returned, "document-check", {"outcome": "incomplete", "missing": ["krk", "gambar_mep"]})
    partial = await resubmit(client, platform, returned, [{"code": "krk", "ref": "dms://krk/2"}], PHONE_IN)
    assert partial.status_code == 422 and "gambar_mep" in partial.text


async def test_officer_endpoints_need_token_role_and_legal_transition(
    permits, platform: PlatformSettings
) -> None:
    client, _, _, _ = permits
    code = await submit(client, business_body("menengah_rendah"))  # no field inspection
    path = f"/officer/applications/{code}/document-check"
    assert (await client.post(path, json={"outcome": "complete"})).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.post(path, json={"outcome": "complete"}, headers=bad)).status_code == 401
    coordinator = officer_headers("coordinator")
    assert (await client.post(path, json={"outcome": "complete"}, headers=coordinator)).status_code == 403
    assert (await client.get("/officer/applications", headers=coordinator)).status_code == 403
    assert (await client.get("/officer/applications", headers=officer_headers("admin"))).status_code == 200

    early = await client.post(f"/officer/applications/{code}/approve", json={}, headers=OFFICER)
    assert early.status_code == 409
    assert early.json()["current_status"] == "submitted" and early.json()["command"] == "approve"
    early_issue = await client.post(f"/officer/applications/{code}/issue", json={}, headers=OFFICER)
    assert early_issue.status_code == 409
    not_returned = await resubmit(client, platform, code, [{"code": "npwp", "ref": "x"}], PHONE)
    assert not_returned.status_code == 409

    await act(client, code, "document-check", {"outcome": "complete"})
    again = await client.post(path, json={"outcome": "complete"}, headers=OFFICER)
    assert again.status_code == 409
    no_inspection = await client.post(
        f"/officer/applications/{code}/inspection",
        json={"scheduled_for": "2027-01-05T10:00:00+07:00", "inspector": "Tim"},
        headers=OFFICER,
    )
    assert no_inspection.status_code == 409 and "no field inspection" in no_inspection.text
    await act(client, code, "approve", {})
    issued = await act(client, code, "issue", {})
    assert re.fullmatch(r"503/PB/00001/\d{4}", issued["permit_number"])
    assert (
        await client.post(f"/officer/applications/{code}/issue", json={}, headers=OFFICER)
    ).status_code == 409
    revoked = await act(client, code, "revoke", {"reason": "Usaha tidak sesuai KBLI"})
    assert revoked["status"] == "revoked"
    verified = await client.get("/permits/verify", params={"number": issued["permit_number"]})
    assert verified.json()["valid"] is False and verified.json()["status"] == "revoked"

    unknown = "/officer/applications/IZN-0000-XXXXXX/approve"
    assert (await client.post(unknown, json={}, headers=OFFICER)).status_code == 404
    assert (await client.get("/permits/verify", params={"number": "503/PB/99999/2020"})).status_code == 404
    assert (await client.get("/permits/verify", params={"number": "no"})).status_code == 422


async def test_only_the_applicant_sends_documents_again(permits, platform: PlatformSettings) -> None:
    """A resubmission needs a session of the phone or email the application gave; anyone
    else, whatever code they hold, gets the answer an unknown code gets."""
    client, ctx, _, _ = permits
    code = await submit(client)
    await act(client, code, "document-check", {"outcome": "incomplete", "missing": ["krk"]})
    documents = [{"code": "krk", "ref": "dms://krk/2"}]
    without = await client.post(f"/applications/{code}/resubmission", json={"documents": documents})
    assert without.status_code == 401 and "WWW-Authenticate" in without.headers
    stranger = "+6281299990000"
    someone_else = await resubmit(client, platform, code, documents, stranger)
    unknown_code = new_public_code("IZN", ctx.clock())
    unknown = await resubmit(client, platform, unknown_code, documents, stranger)
    assert someone_else.status_code == unknown.status_code == 404
    assert someone_else.text.replace(code, "?") == unknown.text.replace(unknown_code, "?")
    assert (await client.get(f"/applications/{code}")).json()["status"] == "documents_incomplete"
    # The applicant's phone proves it as well as their email.
    sent = await resubmit(client, platform, code, documents, PHONE)
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "submitted"


async def test_fiktif_positif_by_the_watcher_exactly_once_even_with_two_instances(permits, infra) -> None:
    client, ctx, db, _ = permits
    code = await submit(client, business_body("rendah"))  # 1 working day, fiktif positif
    warn_at, due_at = (
        await db_fetch(db, "SELECT sla_warn_at, sla_due_at FROM applications WHERE tracking_code=$1", code)
    )[0].values()
    other = await submit(client, business_body("rendah"))
    await act(client, other, "document-check", {"outcome": "incomplete", "missing": ["npwp"]})  # paused
    real_clock = ctx.clock
    try:
        ctx.clock = lambda: warn_at + timedelta(minutes=1)
        warnings = await handlers.watch_sla(ctx)
        warnings_again = await handlers.watch_sla(ctx)
        ctx.clock = lambda: due_at + timedelta(minutes=1)
        # Two instances' watchers at the same moment, while a third transaction holds the
        # row: both wait for it, then the first emits and the second finds nothing owed.
        holder = await asyncpg.connect(db)
        try:
            held = holder.transaction()
            await held.start()
            await holder.execute("SELECT 1 FROM applications WHERE tracking_code=$1 FOR UPDATE", code)
            watchers = [asyncio.create_task(handlers.watch_sla(ctx)) for _ in range(2)]
            await asyncio.sleep(0.3)
            assert not any(w.done() for w in watchers)
            await held.rollback()
        finally:
            await holder.close()
        together = await asyncio.gather(*watchers)
        later = await handlers.watch_sla(ctx)
        public = (await client.get(f"/applications/{code}")).json()
        paused = (await client.get(f"/applications/{other}")).json()
    finally:
        ctx.clock = real_clock
    assert (warnings, warnings_again, sum(together), later) == (1, 0, 2, 0)
    assert public["status"] == "approved" and public["decision"] == "deemed_approved"
    assert public["history"][-1]["action"] == "deemed_approved"
    assert paused["status"] == "documents_incomplete"  # a paused clock is never deemed

    types = [
        r["event_type"].split(".")[-2]
        for r in await db_fetch(db, "SELECT event_type FROM outbox ORDER BY id")
    ]
    assert types.count("deemed_approved") == 1 and types.count("sla_breached") == 1
    found = await events_for(infra, code, 4)
    assert kinds(found) == ["submitted", "sla_warning", "sla_breached", "deemed_approved"]
    deemed = found[-1][1]["data"]
    assert deemed["status"] == "approved" and deemed["processing_working_days"] == 1
    assert deemed["dimension"] == "economy" and deemed["applicant_kind"] == "business"
    assert NIB.encode() not in found[-1][0].value

    issued = await act(client, code, "issue", {})
    assert re.fullmatch(r"503/PB/00001/\d{4}", issued["permit_number"])
    metrics = (await client.get("/metrics")).text
    assert (
        'sinergi_permits_processing_working_days_count{decision="deemed_approved",permit_type="izin_usaha"} 1.0'
        in metrics
    )


async def test_expiry_reminder_and_expiry_by_the_watcher_exactly_once(permits, infra) -> None:
    client, ctx, db, _ = permits
    code = await submit(client, business_body("menengah_rendah"))
    await act(client, code, "document-check", {"outcome": "complete"})
    await act(client, code, "approve", {})
    issued = await act(client, code, "issue", {})
    valid_until = datetime.fromisoformat(issued["valid_until"])
    remind_at = (await db_fetch(db, "SELECT remind_at FROM applications WHERE tracking_code=$1", code))[0][0]
    assert remind_at.astimezone(WIB).time() == time(0, 0)
    assert (valid_until.astimezone(WIB).date() - remind_at.astimezone(WIB).date()).days == 60
    real_clock = ctx.clock
    try:
        ctx.clock = lambda: remind_at - timedelta(days=1)
        nothing = await handlers.watch_expiry(ctx)
        ctx.clock = lambda: remind_at + timedelta(hours=1)
        reminders = [await handlers.watch_expiry(ctx) for _ in range(2)]
        ctx.clock = lambda: valid_until + timedelta(minutes=1)
        expiries = [await handlers.watch_expiry(ctx) for _ in range(2)]
        verified = (await client.get("/permits/verify", params={"number": issued["permit_number"]})).json()
    finally:
        ctx.clock = real_clock
    assert (nothing, reminders, expiries) == (0, [1, 0], [1, 0])
    assert verified["status"] == "expired" and verified["valid"] is False
    found = await events_for(infra, code, 6)
    assert kinds(found)[-2:] == ["expiring", "expired"]
    assert found[-2][1]["data"]["days_left"] == 60


async def test_officer_list_filters_paginates_and_gauges(permits) -> None:
    client, ctx, _, app = permits
    houses = [await submit(client, pbg_body(desa_code="33.06.03.2001")) for _ in range(3)]
    shops = [await submit(client, business_body("menengah_rendah")) for _ in range(2)]
    await act(client, houses[0], "document-check", {"outcome": "incomplete", "missing": ["krk"]})
    await act(client, shops[0], "document-check", {"outcome": "complete"})

    async def listing(query: str) -> dict[str, Any]:
        response = await client.get(f"/officer/applications?{query}", headers=OFFICER)
        assert response.status_code == 200, response.text
        return response.json()

    def codes(page: dict[str, Any]) -> set[str]:
        return {i["tracking_code"] for i in page["items"]}

    page1, page2 = (
        await listing("permit_type=pbg&page_size=2"),
        await listing("permit_type=pbg&page_size=2&page=2"),
    )
    assert page1["total"] == 3 and len(page1["items"]) == 2 and len(page2["items"]) == 1
    assert codes(page1) | codes(page2) == set(houses)
    assert codes(await listing("kecamatan=33.06.03")) == set(houses)
    assert codes(await listing("status=documents_incomplete")) == {houses[0]}
    assert codes(await listing("status=documents_verified&permit_type=izin_usaha")) == {shops[0]}
    assert codes(await listing("applicant_kind=business")) == set(shops)
    paused = await listing("sla=paused")
    assert codes(paused) == {houses[0]} and paused["items"][0]["sla_state"] == "paused"
    assert codes(await listing("sla=on_track")) == set(houses[1:]) | set(shops)
    real_clock = ctx.clock
    try:
        ctx.clock = lambda: real_clock() + timedelta(days=30)  # past every business SLA, not PBG's
        breached = await listing("sla=breached")
        at_risk = await listing("sla=at_risk")
    finally:
        ctx.clock = real_clock
    assert codes(breached) == set(shops) and all(i["sla_state"] == "breached" for i in breached["items"])
    assert not codes(at_risk) & set(shops)
    for bad in ("status=unknown", "sla=late", "kecamatan=33.06", "page=0", "permit_type=PBG%00"):
        assert (await client.get(f"/officer/applications?{bad}", headers=OFFICER)).status_code == 422, bad

    # Gauges of open applications per type and status (the job runs every 15 s).
    await _refresh_gauges(app.state.service)
    metrics = (await client.get("/metrics")).text
    assert 'sinergi_permits_open_applications{permit_type="pbg",status="submitted"} 2.0' in metrics
    assert 'sinergi_permits_open_applications{permit_type="pbg",status="documents_incomplete"} 1.0' in metrics
    assert 'sinergi_permits_open_applications{permit_type="slf",status="submitted"} 0.0' in metrics
    assert 'sinergi_http_requests_total{method="POST",route="/applications",status="201"}' in metrics
