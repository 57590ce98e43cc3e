"""Documents of a permit application uploaded to the permits service (shared/kit/
attachments.py), against the real broker and PostgreSQL: what is accepted, what travels,
what an officer opens, what an erasure leaves."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from services.permits.app import build
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from tests.attachment_support import assert_refused_keeping_nothing, pdf, phone_photo, stored_files
from tests.citizen_support import trust_development_sessions
from tests.harness import db_fetch, events_of, officer_headers, read_topic, running, wait_for
from tests.integration.test_permits_service import (
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
