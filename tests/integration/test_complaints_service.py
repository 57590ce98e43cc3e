"""The complaints service against the real broker and real PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from services.complaints import handlers
from services.complaints.app import ComplaintsSettings, build
from shared.runtime.select import Infrastructure
from shared.schemas import CONTENT_TYPE, parse_record
from tests import harness
from tests.harness import db_fetch, db_fetchval, officer_headers, post_raw, published, wait_for

TOPIC = "complaints.events"
NIK = "3306061708900001"
PHONE_IN = "081234567890"
PHONE = "+6281234567890"


def complaint_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "pengaduan",
        "category": "jalan_rusak",
        "title": "Jalan berlubang di depan balai desa",
        "description": "Lubang besar di jalan desa membahayakan pengendara motor.",
        "desa_code": "33.06.01.2001",
        "reporter": {"nik": NIK, "phone": PHONE_IN, "email": "warga@example.com"},
    }
    body.update(overrides)
    return body


complaints = harness.service_fixture(build, ComplaintsSettings, sla_check_seconds=3600)


async def file(client: httpx.AsyncClient, **overrides: object) -> str:
    response = await client.post("/complaints", json=complaint_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()["tracking_code"]


async def events_for(infra: Infrastructure, tracking_code: str, expected: int) -> list:
    return await published(infra.kafka_bootstrap, TOPIC, expected, tracking_code=tracking_code)


async def test_filing_publishes_exactly_one_structured_cloudevent(complaints, infra) -> None:
    client, _, db = complaints
    code = await file(client)

    found = await events_for(infra, code, 1)
    assert len(found) == 1
    record, event = found[0]
    assert event["specversion"] == "1.0"
    assert event["type"] == "id.sinergi.complaints.complaint.filed.v1"
    assert event["region"] == "33.06"
    complaint_id = (await db_fetch(db, "SELECT id FROM complaints WHERE tracking_code=$1", code))[0]["id"]
    assert event["subject"] == str(complaint_id) == event["data"]["complaint_id"]
    assert record.key == str(complaint_id).encode()
    assert dict(record.headers)["content-type"] == CONTENT_TYPE.encode()
    # Personal data never in clear on the bus; the reporter is a pseudonymous reference.
    assert NIK.encode() not in record.value
    assert PHONE.encode() not in record.value and PHONE_IN.encode() not in record.value
    assert b"warga@example.com" not in record.value
    assert event["data"]["citizen_ref"].startswith("cr1_")
    assert parse_record(record.value).envelope.id == event["id"]
    # The outbox row is marked published.
    rows = await db_fetch(db, "SELECT published_at FROM outbox WHERE key=$1", str(complaint_id))
    assert len(rows) == 1 and rows[0]["published_at"] is not None


async def test_public_view_hides_confidential_content_and_anonymous_reporter(complaints) -> None:
    client, _, _ = complaints
    code = await file(client, confidential=True, anonymous=True, reporter={"phone": PHONE_IN})
    public = (await client.get(f"/complaints/{code}")).json()
    assert public["title"] is None and public["description"] is None
    assert public["status"] == "submitted"
    assert [h["action"] for h in public["history"]] == ["filed"]
    assert "reporter" not in public

    officer = (await client.get(f"/officer/complaints/{code}", headers=officer_headers("coordinator"))).json()
    assert officer["title"] == "Jalan berlubang di depan balai desa"
    assert officer["reporter"] is None  # anonymous: hidden from officers too


async def test_whole_life_emits_ordered_events_under_one_key(complaints, infra) -> None:
    client, _, _ = complaints
    code = await file(client)
    coordinator = officer_headers("coordinator")
    opd_officer = officer_headers("opd_officer", opd="DPUPR", subject="petugas-dpupr")

    steps = [
        (f"/officer/complaints/{code}/verify", {}, coordinator),
        (
            f"/officer/complaints/{code}/dispatch",
            {"opd": "DPUPR", "note": "Mohon ditindaklanjuti"},
            coordinator,
        ),
        (f"/officer/complaints/{code}/progress", {"note": "Tim sudah survei lokasi"}, opd_officer),
        (
            f"/officer/complaints/{code}/responses",
            {"response": "Perbaikan dijadwalkan pekan ini"},
            opd_officer,
        ),
        (f"/officer/complaints/{code}/resolve", {"resolution": "Jalan sudah ditambal"}, opd_officer),
    ]
    for path, body, headers in steps:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 200, (path, response.text)
    rated = await client.post(f"/complaints/{code}/rating", json={"rating": 5, "comment": "Cepat"})
    assert rated.status_code == 200 and rated.json()["status"] == "closed"

    found = await events_for(infra, code, 7)
    kinds = [e["type"].split(".")[-2] for _, e in found]
    assert kinds == ["filed", "verified", "dispatched", "progress_updated", "responded", "resolved", "rated"]
    assert len({r.key for r, _ in found}) == 1 and len({r.partition for r, _ in found}) == 1
    assert [r.offset for r, _ in found] == sorted(r.offset for r, _ in found)
    assert [e["data"]["status"] for _, e in found][-1] == "closed"

    history = (await client.get(f"/complaints/{code}")).json()["history"]
    assert [h["action"] for h in history] == [
        "filed",
        "verified",
        "dispatched",
        "progress_updated",
        "responded",
        "resolved",
        "rated",
    ]


async def test_reopen_merge_and_reject(complaints) -> None:
    client, _, _ = complaints
    coordinator = officer_headers("coordinator")
    code = await file(client)
    for path, body in [("verify", {}), ("dispatch", {}), ("resolve", {"resolution": "Selesai"})]:
        assert (
            await client.post(f"/officer/complaints/{code}/{path}", json=body, headers=coordinator)
        ).status_code == 200
    reopened = await client.post(f"/complaints/{code}/reopen", json={"reason": "Masih berlubang"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "in_progress"

    original, duplicate = await file(client), await file(client)
    merged = await client.post(
        f"/officer/complaints/{duplicate}/merge", json={"duplicate_of": original}, headers=coordinator
    )
    assert merged.status_code == 200 and merged.json()["duplicate_of"] == original
    # The duplicate's filer follows the original through their own code, never given its
    # code (which would let them rate or reopen someone else's complaint).
    followed = (await client.get(f"/complaints/{duplicate}")).json()
    assert followed["status"] == "merged" and original not in str(followed)
    assert followed["followed"]["status"] == "submitted" and followed["followed"]["sla"]
    assert (await client.get(f"/complaints/{original}")).json()["followed"] is None

    other = await file(client, category="adminduk")
    rejected = await client.post(
        f"/officer/complaints/{other}/reject",
        json={"reason_code": "not_within_authority", "reason": "Kewenangan pemerintah pusat"},
        headers=coordinator,
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


async def test_bad_input_gets_field_level_422_never_500(complaints) -> None:
    client, _, _ = complaints
    cases = {
        "day 32 in NIK": (complaint_body(reporter={"nik": "3306063208900001", "phone": PHONE_IN}), "nik"),
        "month 13 in NIK": (complaint_body(reporter={"nik": "3306061713900001", "phone": PHONE_IN}), "nik"),
        "15-digit NIK": (complaint_body(reporter={"nik": "330606170890000", "phone": PHONE_IN}), "nik"),
        "short phone": (complaint_body(reporter={"nik": NIK, "phone": "08123"}), "phone"),
        "unknown desa": (complaint_body(desa_code="33.06.99.2001"), "desa_code"),
        "unknown kind": (complaint_body(kind="keluhan"), "kind"),
        "oversize description": (complaint_body(description="x" * 5001), "description"),
        "unknown category": (complaint_body(category="tidak_ada"), "category"),
        "missing NIK when named": (complaint_body(reporter={"phone": PHONE_IN}), "body"),
        "outside Purworejo": (complaint_body(location={"lat": -6.2, "lon": 106.8}), "location"),
        "unknown field": (complaint_body(extra="x"), "extra"),
    }
    for name, (body, field) in cases.items():
        response = await client.post("/complaints", json=body)
        assert response.status_code == 422, (name, response.text)
        detail = response.json()["detail"]
        assert any(field in [str(p) for p in d["loc"]] for d in detail), (name, detail)
        assert NIK not in response.text or name == "missing NIK when named"

    assert (await post_raw(client, "/complaints", b"{not json")).status_code == 422
    assert (await post_raw(client, "/complaints", b"x" * 200_000)).status_code == 413
    assert (await client.get("/complaints/ADU-0000-XXXXXX")).status_code == 404


async def test_officer_endpoints_need_token_role_and_legal_transition(complaints) -> None:
    client, _, _ = complaints
    code = await file(client)
    assert (await client.post(f"/officer/complaints/{code}/verify")).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.post(f"/officer/complaints/{code}/verify", headers=bad)).status_code == 401
    opd_officer = officer_headers("opd_officer", opd="DLH")
    assert (await client.post(f"/officer/complaints/{code}/verify", headers=opd_officer)).status_code == 403

    coordinator = officer_headers("coordinator")
    illegal = await client.post(f"/officer/complaints/{code}/resolve", json={}, headers=coordinator)
    assert illegal.status_code == 409
    assert illegal.json()["current_status"] == "submitted"
    assert (await client.post(f"/officer/complaints/{code}/verify", headers=coordinator)).status_code == 200
    assert (await client.post(f"/officer/complaints/{code}/verify", headers=coordinator)).status_code == 409
    assert (await client.post(f"/complaints/{code}/rating", json={"rating": 4})).status_code == 409
    assert (
        await client.post("/officer/complaints/ADU-0000-XXXXXX/verify", headers=coordinator)
    ).status_code == 404

    # An officer of another OPD may not work a complaint disposed to DPUPR.
    await client.post(f"/officer/complaints/{code}/dispatch", json={"opd": "DPUPR"}, headers=coordinator)
    assert (
        await client.post(f"/officer/complaints/{code}/resolve", json={}, headers=opd_officer)
    ).status_code == 403
    listing = await client.get("/officer/complaints", headers=opd_officer)
    assert listing.status_code == 200 and all(i["opd"] == "DLH" for i in listing.json()["items"])


async def test_officer_list_filters_and_paginates(complaints) -> None:
    client, _, _ = complaints
    codes = [await file(client, category="sampah", desa_code="33.06.02.2001") for _ in range(5)]
    coordinator = officer_headers("coordinator")
    page1 = (await client.get("/officer/complaints?category=sampah&page_size=2", headers=coordinator)).json()
    page3 = (
        await client.get("/officer/complaints?category=sampah&page_size=2&page=3", headers=coordinator)
    ).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and len(page3["items"]) == 1
    by_kecamatan = (await client.get("/officer/complaints?kecamatan=33.06.02", headers=coordinator)).json()
    assert {i["tracking_code"] for i in by_kecamatan["items"]} == set(codes)
    bad = await client.get("/officer/complaints?status=unknown", headers=coordinator)
    assert bad.status_code == 422


async def test_officer_list_by_sla_due_puts_the_nearest_running_clock_first(complaints) -> None:
    """`sort=due` (the coordinator's inbox): the soonest running clock first, ties by
    filing order, complaints with no running clock last; the default is newest first."""
    client, _, _ = complaints
    coordinator = officer_headers("coordinator")
    first, second, dispatched, rejected = [await file(client, category="lampu_jalan") for _ in range(4)]
    await client.post(f"/officer/complaints/{dispatched}/verify", headers=coordinator)
    await client.post(f"/officer/complaints/{dispatched}/dispatch", json={}, headers=coordinator)
    await client.post(
        f"/officer/complaints/{rejected}/reject", json={"reason_code": "spam"}, headers=coordinator
    )

    async def listed(**params: str) -> list[str]:
        answer = await client.get(
            "/officer/complaints", params={"category": "lampu_jalan", **params}, headers=coordinator
        )
        assert answer.status_code == 200, answer.text
        return [i["tracking_code"] for i in answer.json()["items"]]

    assert await listed(sort="due") == [first, second, dispatched, rejected]
    assert await listed() == [rejected, dispatched, second, first]
    assert (await client.get("/officer/complaints?sort=oldest", headers=coordinator)).status_code == 422


async def test_sla_watcher_emits_warning_and_breach_exactly_once(complaints, infra) -> None:
    client, ctx, db = complaints
    code = await file(client)
    filed_at = ctx.clock()
    real_clock = ctx.clock
    try:
        # 2.5 working days later at most: the verification clock is at risk, not due.
        ctx.clock = lambda: ctx.calendar.add_working_days(filed_at, 2) + timedelta(hours=1)
        first = await handlers.watch_sla(ctx)
        again = await handlers.watch_sla(ctx)
        ctx.clock = lambda: ctx.calendar.add_working_days(filed_at, 3) + timedelta(hours=1)
        breach = await handlers.watch_sla(ctx)
        breach_again = await handlers.watch_sla(ctx)
        listing = (
            await client.get("/officer/complaints?sla=breached", headers=officer_headers("coordinator"))
        ).json()
        assert code in {i["tracking_code"] for i in listing["items"]}
    finally:
        ctx.clock = real_clock
    assert (first, again, breach, breach_again) == (1, 0, 1, 0)
    types = [
        r["event_type"].split(".")[-2]
        for r in await db_fetch(db, "SELECT event_type FROM outbox ORDER BY id")
        if r["event_type"].split(".")[-2].startswith("sla")
    ]
    assert types == ["sla_warning", "sla_breached"]
    found = await events_for(infra, code, 3)
    assert [json.loads(r.value)["data"].get("clock") for r, _ in found[1:]] == [
        "verification",
        "verification",
    ]


async def test_broker_outage_keeps_accepting_and_publishes_after(complaints, infra, broker_process) -> None:
    client, _, db = complaints
    await file(client)  # the relay is connected and has published at least once
    broker_process.pause()
    try:
        codes = [await file(client) for _ in range(3)]
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["broker"] == "down"
        pending = await db_fetch(db, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        assert pending[0]["n"] >= 3
    finally:
        broker_process.resume()
    for code in codes:
        found = await events_for(infra, code, 1)
        assert len(found) == 1
    ready = await wait_for(lambda: _ready(client), timeout=30)
    assert ready


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/ready")).status_code == 200


async def test_health_metrics_and_openapi(complaints) -> None:
    client, _, _ = complaints
    await file(client)
    assert (await client.get("/health")).json()["status"] == "ok"
    assert (await wait_for(lambda: _ready(client), timeout=30)) is True
    metrics = (await client.get("/metrics")).text
    assert 'sinergi_http_requests_total{method="POST",route="/complaints",status="201"}' in metrics
    assert "sinergi_outbox_pending_events" in metrics
    schema = (await client.get("/openapi.json")).json()
    assert (
        "/complaints" in schema["paths"] and "/officer/complaints/{tracking_code}/dispatch" in schema["paths"]
    )


async def test_admin_republishes_retained_events_in_order(complaints, infra) -> None:
    client, _, _ = complaints
    code = await file(client)
    await events_for(infra, code, 1)
    admin = officer_headers("admin")

    async def settled() -> dict | None:
        state = (await client.get("/admin/outbox", headers=admin)).json()
        return state if state["pending"] == 0 else None

    state = await wait_for(settled)  # the relay marks rows just after the broker acknowledges
    assert state["retained"] >= 1 and state["oldest_age_s"] is None
    assert datetime.fromisoformat(state["last_published_at"]) >= datetime.fromisoformat(
        state["retained_since"]
    )
    assert (
        await client.post("/admin/outbox/republish", json={"since": "2020-01-01T00:00:00"}, headers=admin)
    ).status_code == 422
    response = await client.post(
        "/admin/outbox/republish", json={"since": "2020-01-01T00:00:00+07:00"}, headers=admin
    )
    assert response.status_code == 200 and response.json()["republishing"] == state["retained"]
    found = await events_for(infra, code, 2)
    assert len({e["id"] for _, e in found}) == 1  # the same event again: consumers deduplicate
    assert (
        await client.post("/admin/dead-letters/replay", headers=officer_headers("coordinator"))
    ).status_code == 403


async def test_officer_actions_are_audited_in_their_transaction(complaints) -> None:
    client, _, _ = complaints
    code = await file(client)
    coordinator = officer_headers("coordinator", subject="koordinator-7")
    assert (await client.post(f"/officer/complaints/{code}/verify", headers=coordinator)).status_code == 200
    refused = await client.post(f"/officer/complaints/{code}/resolve", json={}, headers=coordinator)
    assert refused.status_code == 409  # rolled back: no audit row for an action that did not happen
    trail = (await client.get("/admin/audit?subject=koordinator-7", headers=officer_headers("admin"))).json()
    assert len(trail) == 1
    entry = trail[0]
    assert entry["route"] == "/officer/complaints/{tracking_code}/verify" and entry["role"] == "coordinator"
    assert (
        entry["events"] == ["id.sinergi.complaints.complaint.verified.v1"] and len(entry["aggregates"]) == 2
    )
    assert (await client.get("/admin/audit", headers=coordinator)).status_code == 403
    # Searched a page at a time and within a time range.
    assert (
        await client.post(f"/officer/complaints/{code}/dispatch", json={"opd": "DPUPR"}, headers=coordinator)
    ).status_code == 200
    admin = officer_headers("admin")
    both = (await client.get("/admin/audit", params={"subject": "koordinator-7"}, headers=admin)).json()
    assert [e["route"].rsplit("/", 1)[1] for e in both] == ["dispatch", "verify"]
    paged = {"subject": "koordinator-7", "limit": 1, "offset": 1}
    assert (await client.get("/admin/audit", params=paged, headers=admin)).json() == both[1:]
    assert code in entry["aggregates"]  # the complaint's id and its tracking code
    before = {"subject": "koordinator-7", "until": both[0]["at"], "aggregate": code}
    assert (await client.get("/admin/audit", params=before, headers=admin)).json() == both[1:]
    assert (
        await client.get("/admin/audit", params={"until": "2026-01-01"}, headers=admin)
    ).status_code == 422


async def test_a_citizen_can_be_exported_and_erased(complaints, infra) -> None:
    client, _, db = complaints
    code = await file(client, location={"lat": -7.71, "lon": 110.01})
    coordinator = officer_headers("coordinator")
    steps = [
        ("verify", {}),
        ("dispatch", {"opd": "DPUPR"}),
        ("progress", {"note": "Tim sudah survei lokasi"}),
        ("responses", {"response": "Terima kasih, lubang di depan rumah Bapak akan ditambal"}),
        ("resolve", {"resolution": "Jalan sudah ditambal"}),
    ]
    for step, body in steps:
        done = await client.post(f"/officer/complaints/{code}/{step}", json=body, headers=coordinator)
        assert done.status_code == 200, (step, done.text)
    await client.post(f"/complaints/{code}/reopen", json={"reason": "Masih berlubang di depan rumah saya"})
    await client.post(f"/officer/complaints/{code}/resolve", json={}, headers=coordinator)
    rated = await client.post(f"/complaints/{code}/rating", json={"rating": 4, "comment": "Pak RT puas"})
    assert rated.status_code == 200
    # Filed without a NIK: only the contact leads to it.
    other_phone = "081298765432"
    anonymous = await file(client, anonymous=True, reporter={"phone": other_phone})
    admin = officer_headers("admin")
    exported = await client.post("/admin/citizens/export", json={"nik": NIK}, headers=admin)
    assert exported.status_code == 200
    assert [c["tracking_code"] for c in exported.json()["data"]["complaints"]] == [code]
    assert "Masih berlubang di depan rumah saya" in {h["note"] for h in exported.json()["data"]["history"]}
    ref = exported.json()["citizen_ref"]
    with_contact = {"nik": NIK, "phone": other_phone}
    both = (await client.post("/admin/citizens/export", json=with_contact, headers=admin)).json()
    assert {c["tracking_code"] for c in both["data"]["complaints"]} == {code, anonymous}
    keys = "SELECT count(*) FROM citizen_keys"
    assert await db_fetchval(db, keys) == 2  # the NIK's and the anonymous contact's

    erased = await client.post("/admin/citizens/erase", json=with_contact, headers=admin)
    assert erased.status_code == 200
    assert erased.json()["erased"] == {"complaints": 2, "photos": 0, "notes": 2}
    assert await db_fetchval(db, keys) == 0  # every sealed copy of either contact is shredded
    rows = await db_fetch(
        db,
        "SELECT tracking_code, reporter_nik, reporter_phone, reporter_email, citizen_ref, title, description,"
        " lat, lon, rating_comment, category, desa_code, opd, status, rating, filed_at IS NOT NULL AS dated"
        " FROM complaints ORDER BY filed_at",
    )
    erased_reporter = (None, None, None, None, "[dihapus]", "[dihapus]", None, None, None)
    assert [tuple(r) for r in rows] == [
        (code, *erased_reporter, "jalan_rusak", "33.06.01.2001", "DPUPR", "closed", 4, True),
        (anonymous, *erased_reporter, "jalan_rusak", "33.06.01.2001", "DPUPR", "submitted", None, True),
    ]
    notes = await db_fetch(
        db,
        "SELECT h.action, h.note FROM complaint_history h JOIN complaints c ON c.id = h.complaint_id"
        " WHERE c.tracking_code = $1 ORDER BY h.id",
        code,
    )
    # The citizen's words and the replies to them are gone; the officers' account stays.
    assert [tuple(n) for n in notes if n["note"] is not None] == [
        ("dispatched", "Diteruskan ke Dinas Pekerjaan Umum dan Penataan Ruang"),
        ("progress_updated", "Tim sudah survei lokasi"),
        ("resolved", "Jalan sudah ditambal"),
    ]
    assert {n["action"] for n in notes if n["note"] is None} >= {"reopened", "responded"}
    # Nothing is left about them: the answer a stranger's NIK gets (never a 404 telling them apart).
    again = await client.post("/admin/citizens/export", json=with_contact, headers=admin)
    assert again.status_code == 200 and not any(again.json()["data"].values())

    # The erasure is announced on the bus, without the NIK, for downstream consumers.
    found = await published(infra.kafka_bootstrap, TOPIC, 1, citizen_ref=ref, service="complaints")
    assert {e["type"] for _, e in found} == {"id.sinergi.privacy.citizen.erased.v1"}
    assert NIK.encode() not in found[0][0].value
    assert b"+6281298765432" not in found[0][0].value
    # Bad input is refused by field; a contact nobody gave erases nothing and says so
    # the same way as one somebody gave (no refusal tells whether a person exists).
    bad = await client.post("/admin/citizens/erase", json={"nik": NIK, "phone": "12"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "phone"]
    assert (await client.post("/admin/citizens/erase", json={"nik": "123"}, headers=admin)).status_code == 422
    nobody = await client.post(
        "/admin/citizens/erase", json={**with_contact, "email": "x@example.org"}, headers=admin
    )
    assert nobody.status_code == 200 and nobody.json()["erased"] == {"complaints": 0, "photos": 0, "notes": 0}
    assert (
        await client.post("/admin/citizens/erase", json={"nik": NIK}, headers=officer_headers("coordinator"))
    ).status_code == 403
