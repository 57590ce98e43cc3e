"""Photos of a complaint (shared/kit/attachments.py in the complaints service), against
the real broker and PostgreSQL: what is kept, what travels, who sees it, what erasure
leaves."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import ExifTags, Image

from services.complaints import handlers
from services.complaints.app import ComplaintsSettings, build
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from tests.attachment_support import GPS, assert_refused_keeping_nothing, pdf, phone_photo, stored_files
from tests.harness import db_fetch, officer_headers, running, wait_for
from tests.integration.test_complaints_service import NIK, complaint_body, events_for


@pytest.fixture
async def complaints(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, handlers.Context, str, Path]]:
    store = tmp_path / "attachments"
    settings = ComplaintsSettings(
        database_url=fresh_database,
        platform=platform.model_copy(update={"attachments_dir": store}),
        sla_check_seconds=3600,
        attachment_purge_seconds=0.5,
    )
    app = build(settings)
    async with running(app) as client:
        yield client, app.state.service.context, fresh_database, store


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "foto.jpg") -> httpx.Response:
    return await client.post("/complaints/photos", files={"file": (name, data, "image/jpeg")})


async def test_a_photo_travels_as_id_and_hash_and_is_kept_without_its_gps(complaints, infra) -> None:
    client, _, db, store = complaints
    original = phone_photo()
    uploaded = await upload(client, original)
    assert uploaded.status_code == 201, uploaded.text
    photo = uploaded.json()
    assert photo["media_type"] == "image/jpeg"

    filed = await client.post("/complaints", json=complaint_body(photos=[photo["id"]]))
    assert filed.status_code == 201, filed.text
    code = filed.json()["tracking_code"]

    # On the bus: the id and the hash of what is kept, never the bytes.
    [(record, event)] = await events_for(infra, code, 1)
    assert event["data"]["photos"] == [photo]
    assert len(record.value) < 4096

    coordinator = officer_headers("coordinator", subject="koordinator-foto")
    case = (await client.get(f"/officer/complaints/{code}", headers=coordinator)).json()
    [listed] = case["photos"]
    assert listed["id"] == photo["id"]
    downloaded = await client.get(listed["url"], headers=coordinator)
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "image/jpeg"
    assert downloaded.headers["x-content-type-options"] == "nosniff"
    assert hashlib.sha256(downloaded.content).hexdigest() == photo["sha256"]
    kept = Image.open(io.BytesIO(downloaded.content))
    assert kept.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {} and dict(kept.getexif()) == {}
    assert [f.read_bytes() for f in stored_files(store)] == [downloaded.content]
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo) == GPS

    reads = await db_fetch(
        db,
        "SELECT route FROM audit_log WHERE subject = $1 AND action = 'read' ORDER BY id",
        "koordinator-foto",
    )
    assert [r["route"] for r in reads] == [
        "/officer/complaints/{tracking_code}",
        "/officer/complaints/{tracking_code}/photos/{photo_id}",
    ]

    # Another OPD's officer is refused, as for the complaint itself; the public view has no photos.
    other = officer_headers("opd_officer", opd="DINKES")
    assert (await client.get(listed["url"], headers=other)).status_code == 403
    assert (await client.get(listed["url"])).status_code == 401
    assert "photos" not in (await client.get(f"/complaints/{code}")).json()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pdf(), "JPEG atau PNG"),
        (b"MZ\x90\x00" + bytes(300), "JPEG atau PNG"),
        (b"\xff\xd8\xff" + bytes(6 * 1024 * 1024), "5 MB"),
        (b"", "kosong"),
    ],
    ids=["pdf-named-jpg", "program-named-jpg", "6-mb", "empty"],
)
async def test_a_refused_upload_says_why_on_the_field_and_keeps_nothing(complaints, data, message) -> None:
    client, _, db, store = complaints
    await assert_refused_keeping_nothing(await upload(client, data), message, db, store)


async def test_a_photo_is_filed_once_and_only_as_a_photo(complaints) -> None:
    client, _, db, _ = complaints
    photo = (await upload(client, phone_photo("PNG"))).json()
    first = await client.post("/complaints", json=complaint_body(photos=[photo["id"]]))
    assert first.status_code == 201

    again = await client.post("/complaints", json=complaint_body(photos=[photo["id"]]))
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "photos", 0]
    unknown = await client.post(
        "/complaints", json=complaint_body(photos=["00000000-0000-4000-8000-000000000000"])
    )
    assert unknown.status_code == 422
    four = [(await upload(client, phone_photo())).json()["id"] for _ in range(4)]
    too_many = await client.post("/complaints", json=complaint_body(photos=four))
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "photos"]
    # Nothing of the refused filings was kept: one complaint, its one photo claimed.
    assert len(await db_fetch(db, "SELECT id FROM complaints")) == 1
    claimed = await db_fetch(db, "SELECT owner FROM attachment WHERE owner IS NOT NULL")
    assert [r["owner"] for r in claimed] == [first.json()["tracking_code"]]


async def test_erasing_the_citizen_deletes_the_photo_bytes(complaints) -> None:
    client, _, db, store = complaints
    photo = (await upload(client, phone_photo())).json()
    code = (await client.post("/complaints", json=complaint_body(photos=[photo["id"]]))).json()[
        "tracking_code"
    ]
    admin = officer_headers("admin")
    exported = (await client.post("/admin/citizens/export", json={"nik": NIK}, headers=admin)).json()
    assert [p["sha256"] for p in exported["data"]["photos"]] == [photo["sha256"]]
    assert len(stored_files(store)) == 1

    erased = await client.post("/admin/citizens/erase", json={"nik": NIK}, headers=admin)
    assert erased.json()["erased"] == {"complaints": 1, "photos": 1, "notes": 0}

    await wait_for(lambda: stored_files(store) == [], timeout=10)
    coordinator = officer_headers("coordinator")
    assert (await client.get(f"/officer/complaints/{code}", headers=coordinator)).json()["photos"] == []
    gone = await client.get(f"/officer/complaints/{code}/photos/{photo['id']}", headers=coordinator)
    assert gone.status_code == 404
    [row] = await db_fetch(db, "SELECT erased_at IS NOT NULL AS erased, purged FROM attachment")
    assert tuple(row) == (True, True)


async def test_an_upload_nobody_files_is_deleted_after_a_day(complaints) -> None:
    client, _, db, store = complaints
    await upload(client, phone_photo())
    await db_fetch(db, "UPDATE attachment SET created_at = created_at - interval '25 hours' RETURNING id")

    async def purged() -> bool:
        # The bytes go first, then the row is marked: wait for the mark.
        return (await db_fetch(db, "SELECT purged FROM attachment"))[0]["purged"] is True

    await wait_for(purged, timeout=20)
    assert stored_files(store) == []


async def test_a_resolution_photo_is_claimed_with_the_resolution_and_shown_to_the_reporter(
    complaints, infra
) -> None:
    client, _, _, _ = complaints
    filed = await client.post("/complaints", json=complaint_body())
    code = filed.json()["tracking_code"]
    coordinator = officer_headers("coordinator", subject="koordinator-selesai")
    opd = officer_headers("opd_officer", opd="DPUPR", subject="opd-selesai")
    for step, sent in (("verify", {}), ("dispatch", {"opd": "DPUPR"})):
        assert (
            await client.post(f"/officer/complaints/{code}/{step}", json=sent, headers=coordinator)
        ).is_success
    taken = (await upload(client, phone_photo())).json()

    # An id that is no staged upload: the field's 422, nothing resolved.
    unknown = {"resolution": "Sudah ditambal", "photo": "00000000-0000-4000-8000-000000000000"}
    refused = await client.post(f"/officer/complaints/{code}/resolve", json=unknown, headers=opd)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "photo"
    assert (await client.get(f"/complaints/{code}")).json()["status"] == "dispatched"

    body = {"resolution": "Sudah ditambal", "photo": taken["id"]}
    resolved = await client.post(f"/officer/complaints/{code}/resolve", json=body, headers=opd)
    assert resolved.status_code == 200, resolved.text
    officers = resolved.json()
    assert officers["photos"] == [] and officers["resolution_photo"]["id"] == taken["id"]
    shown = await client.get(officers["resolution_photo"]["url"], headers=opd)
    assert hashlib.sha256(shown.content).hexdigest() == taken["sha256"]

    # The reporter, following the complaint by its code, sees it.
    followed = (await client.get(f"/complaints/{code}")).json()
    assert followed["resolution_photo"] == {"id": taken["id"], "url": f"/complaints/{code}/resolution-photo"}
    public = await client.get(followed["resolution_photo"]["url"])
    assert public.status_code == 200 and public.headers["content-type"] == "image/jpeg"
    assert public.headers["content-disposition"].startswith("inline;")
    assert hashlib.sha256(public.content).hexdigest() == taken["sha256"]
    # The event names it by id and hash; the upload is the complaint's now, once.
    events = await events_for(infra, code, 4)
    assert events[-1][1]["data"]["photo"] == {**taken, "label": "resolution"}
    again = await client.post("/complaints", json=complaint_body(photos=[taken["id"]]))
    assert again.status_code == 422

    # Reopened as not fixed: the photo no longer stands for the complaint.
    reopened = await client.post(f"/complaints/{code}/reopen", json={"reason": "Lubang masih ada"})
    assert reopened.status_code == 200 and reopened.json()["resolution_photo"] is None
    assert (await client.get(f"/complaints/{code}/resolution-photo")).status_code == 404
    # A confidential complaint shows no photo of its work to whoever holds the code.
    secret = (await client.post("/complaints", json=complaint_body(confidential=True))).json()[
        "tracking_code"
    ]
    assert (await client.get(f"/complaints/{secret}/resolution-photo")).status_code == 404
