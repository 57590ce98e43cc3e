"""Documents of a permit application uploaded to the permits service (shared/kit/
attachments.py), against the real broker and PostgreSQL: what is accepted, what travels,
what an officer opens, what an erasure leaves."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from services.permits.app import build
from services.permits.domain import WIB
from shared.kit.settings import PlatformSettings
from shared.reference import default_calendar
from shared.runtime.select import Infrastructure
from tests.attachment_support import assert_refused_keeping_nothing, pdf, phone_photo, stored_files
from tests.citizen_support import minted_session, trust_development_sessions
from tests.harness import db_fetch, events_of, officer_headers, read_topic, running, wait_for
from tests.integration.test_permits_service import (
    EMAIL,
    NIK,
    OFFICER,
    PBG_DOCUMENTS,
    TOPIC,
    act,
    pbg_body,
    resubmit,
    settings_for,
)


@pytest.fixture
async def permits(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str, Path]]:
    store = tmp_path / "attachments"
    settings = settings_for(fresh_database, platform.model_copy(update={"attachments_dir": store}))
    app = trust_development_sessions(build(settings.model_copy(update={"attachment_purge_seconds": 0.5})))
    async with running(app) as client:
        yield client, fresh_database, store


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "dokumen.pdf") -> httpx.Response:
    return await client.post("/applications/documents", files={"file": (name, data, "application/pdf")})


async def uploaded(client: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    answer = await upload(client, data)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def submitted_events(infra: Infrastructure, code: str, kind: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        events = events_of(await read_topic(infra.kafka_bootstrap, TOPIC), tracking_code=code)
        return next((e["data"] for _, e in events if e["type"].endswith(f".{kind}.v1")), None)

    return await wait_for(found)


async def test_an_application_with_uploaded_documents_from_submission_to_the_officer(
    permits, infra, platform: PlatformSettings
) -> None:
    client, db, store = permits
    files = {code: await uploaded(client, pdf(pages=2)) for code in PBG_DOCUMENTS[1:]}
    files["ktp"] = await uploaded(client, phone_photo())  # a KTP photographed with a phone
    assert files["ktp"]["media_type"] == "image/jpeg"
    body = pbg_body(documents=[{"code": code, "upload": files[code]["id"]} for code in PBG_DOCUMENTS])
    answer = await client.post("/applications", json=body)
    assert answer.status_code == 201, answer.text
    code = answer.json()["tracking_code"]

    # The bus names each file by id and hash, labelled with its document code; no bytes.
    event = await submitted_events(infra, code, "submitted")
    assert {f["label"]: f["sha256"] for f in event["files"]} == {c: f["sha256"] for c, f in files.items()}

    officer = officer_headers("permit_officer", subject="petugas-berkas")
    case = (await client.get(f"/officer/applications/{code}", headers=officer)).json()
    refs = {d["code"]: d for d in case["document_refs"]}
    assert refs["ktp"]["ref"] is None and refs["ktp"]["file"]["id"] == files["ktp"]["id"]
    scan = await client.get(refs["ktp"]["file"]["url"], headers=officer)
    assert scan.status_code == 200 and scan.headers["content-type"] == "image/jpeg"
    assert dict(Image.open(io.BytesIO(scan.content)).getexif()) == {}
    plan = await client.get(refs["krk"]["file"]["url"], headers=officer)
    assert plan.headers["content-type"] == "application/pdf"
    assert plan.headers["content-disposition"].startswith("inline")
    assert hashlib.sha256(plan.content).hexdigest() == files["krk"]["sha256"]
    assert (await client.get(refs["krk"]["file"]["url"])).status_code == 401
    other = await client.get(refs["krk"]["file"]["url"], headers=officer_headers("coordinator"))
    assert other.status_code == 403
    reads = await db_fetch(
        db, "SELECT route FROM audit_log WHERE subject = 'petugas-berkas' AND action = 'read'"
    )
    assert [r["route"] for r in reads].count(
        "/officer/applications/{tracking_code}/documents/{document_id}"
    ) == 2
    assert len(stored_files(store)) == len(PBG_DOCUMENTS)

    # Sent back for the site plan: the applicant uploads a new one and the clock resumes.
    await act(
        client, code, "document-check", {"outcome": "incomplete", "missing": ["krk"], "note": "KRK buram"}
    )
    new_plan = await uploaded(client, pdf())
    resubmitted = await resubmit(client, platform, code, [{"code": "krk", "upload": new_plan["id"]}])
    assert resubmitted.status_code == 200, resubmitted.text
    assert resubmitted.json()["sla"]["state"] == "on_track"
    event = await submitted_events(infra, code, "resubmitted")
    assert event["files"] == [
        {**{k: new_plan[k] for k in ("id", "media_type", "sha256", "size")}, "label": "krk"}
    ]
    case = (await client.get(f"/officer/applications/{code}", headers=officer)).json()
    assert {d["code"]: d["file"]["id"] for d in case["document_refs"]}["krk"] == new_plan["id"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"MZ\x90\x00\x03" + bytes(400), "JPEG, PNG atau PDF"),  # a program named .pdf
        (b"%PDF-1.7\n" + bytes(11 * 1024 * 1024), "10 MB"),
        (b"%PDF-1.4\n%%EOF garbage", "PDF tidak dapat dibaca"),
    ],
    ids=["program-named-pdf", "11-mb", "broken-pdf"],
)
async def test_a_refused_document_says_why_on_the_field_and_keeps_nothing(permits, data, message) -> None:
    client, db, store = permits
    await assert_refused_keeping_nothing(await upload(client, data), message, db, store)


async def test_each_document_names_one_source_and_an_upload_serves_once(permits) -> None:
    client, db, _ = permits
    both = pbg_body()
    both["documents"][0] = {
        "code": "ktp",
        "ref": "dms://ktp/1",
        "upload": (await uploaded(client, pdf()))["id"],
    }
    assert (await client.post("/applications", json=both)).status_code == 422
    neither = pbg_body()
    neither["documents"][0] = {"code": "ktp"}
    assert (await client.post("/applications", json=neither)).status_code == 422

    ktp = await uploaded(client, pdf())
    first = pbg_body()
    first["documents"][0] = {"code": "ktp", "upload": ktp["id"]}
    assert (await client.post("/applications", json=first)).status_code == 201
    again = await client.post("/applications", json=first)
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "documents", 0, "upload"]
    assert len(await db_fetch(db, "SELECT id FROM applications")) == 1


async def test_erasure_deletes_the_documents_of_an_anonymised_application(permits) -> None:
    client, _, store = permits
    ktp = await uploaded(client, phone_photo())
    body = pbg_body()
    body["documents"][0] = {"code": "ktp", "upload": ktp["id"]}
    code = (await client.post("/applications", json=body)).json()["tracking_code"]
    await act(client, code, "reject", {"reasons": ["Lokasi di kawasan lindung"]})
    admin = officer_headers("admin")
    exported = (await client.post("/admin/citizens/export", json={"nik": NIK}, headers=admin)).json()
    assert [(d["label"], d["sha256"]) for d in exported["data"]["documents"]] == [("ktp", ktp["sha256"])]

    erased = (await client.post("/admin/citizens/erase", json={"nik": NIK}, headers=admin)).json()["erased"]
    assert erased["documents"] == 1 and erased["applications"] == 1
    await wait_for(lambda: stored_files(store) == [], timeout=10)
    url = f"/officer/applications/{code}/documents/{ktp['id']}"
    assert (await client.get(url, headers=OFFICER)).status_code == 404


async def test_erasure_leaves_an_issued_permit_only_what_its_type_retains(permits, platform) -> None:
    client, db, store = permits
    files = {code: await uploaded(client, pdf()) for code in PBG_DOCUMENTS}
    details = {"building_function": "hunian", "building_area_m2": 120, "floors": 2}
    body = pbg_body(documents=[{"code": c, "upload": f["id"]} for c, f in files.items()], details=details)
    issued = (await client.post("/applications", json=body)).json()["tracking_code"]
    await act(client, issued, "document-check", {"outcome": "incomplete", "missing": ["krk"]})
    again = {"code": "krk", "ref": "dms://krk/2"}
    sent = await client.post(
        f"/applications/{issued}/resubmission",
        json={"documents": [again], "note": "KRK baru, rumah saya di RT 02"},
        headers=minted_session(platform, EMAIL),
    )
    assert sent.status_code == 200, sent.text
    await act(client, issued, "document-check", {"outcome": "complete"})
    next_day = default_calendar().next_working_day(date.today())
    at = datetime.combine(next_day, time(10, 0), tzinfo=WIB).isoformat()
    await act(client, issued, "inspection", {"scheduled_for": at, "inspector": "Tim Teknis"})
    await act(client, issued, "inspection/result", {"result": "passed", "findings": "Sesuai gambar"})
    await act(client, issued, "approve", {})
    await act(client, issued, "issue", {})
    rejected = (await client.post("/applications", json=pbg_body(details={**details, "floors": 3}))).json()
    await act(client, rejected["tracking_code"], "reject", {"reasons": ["Lokasi di kawasan lindung"]})
    undecided = (await client.post("/applications", json=pbg_body())).json()["tracking_code"]

    admin = officer_headers("admin")
    erased = await client.post("/admin/citizens/erase", json={"nik": NIK}, headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"] == {
        "applications": 1,
        "applications_kept_by_law": 1,
        "applications_undecided": 1,
        "documents": 2,  # the issued permit's KTP and land title, nothing else
        "notes": 1,
    }
    rows = {
        r["tracking_code"]: r
        for r in await db_fetch(
            db,
            "SELECT tracking_code, applicant_nik, applicant_name, applicant_phone, applicant_email,"
            " details, documents, permit_number FROM applications",
        )
    }
    permit = rows[issued]
    # The public record: the holder, the number, the building and its plans.
    assert (permit["applicant_name"], permit["applicant_phone"], permit["applicant_email"]) == (
        "Budi Santoso",
        None,
        None,
    )
    assert permit["permit_number"] is not None and json.loads(permit["details"]) == details
    kept = ["krk", "gambar_arsitektur", "gambar_struktur", "gambar_mep"]
    assert [d["code"] for d in json.loads(permit["documents"])] == kept
    assert json.loads(rows[rejected["tracking_code"]]["details"]) == {}
    assert json.loads(rows[rejected["tracking_code"]]["documents"]) == []
    assert rows[rejected["tracking_code"]]["applicant_name"] == "[dihapus]"
    assert json.loads(rows[undecided]["details"]) == {**details}  # still being decided
    notes = await db_fetch(db, "SELECT action, note FROM application_history WHERE action = 'resubmitted'")
    assert [tuple(n) for n in notes] == [("resubmitted", None)]

    # The KTP's and the land title's bytes go; the plans stay and still open.
    gone = {files["ktp"]["id"], files["bukti_tanah"]["id"]}
    await wait_for(lambda: len(stored_files(store)) == len(PBG_DOCUMENTS) - 2, timeout=10)
    for code, file in files.items():
        answer = await client.get(f"/officer/applications/{issued}/documents/{file['id']}", headers=OFFICER)
        assert answer.status_code == (404 if file["id"] in gone else 200), code
