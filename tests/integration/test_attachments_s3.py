"""Attachments in an S3-compatible object store, the production option
(shared/kit/attachments.py `S3Store`), against a real S3 API: S3Proxy from its published
jar on loopback (shared/runtime/s3proxy.py). Both stores keep the same contract, and the
complaints service keeps a photo's bytes in the bucket, serves them to an officer and
deletes them when the citizen is erased."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from services.complaints.app import ComplaintsSettings, build
from shared.kit.attachments import AttachmentStore, FileStore, S3Store, store_for
from shared.kit.settings import PlatformSettings
from shared.runtime.s3proxy import S3Proxy
from tests.attachment_support import phone_photo
from tests.harness import officer_headers, running, wait_for
from tests.integration.test_complaints_service import NIK, complaint_body

BUCKET = "sinergi-attachments"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Proxy]:
    with S3Proxy(tmp_path_factory.mktemp("s3")) as server:
        server.create_bucket(BUCKET)
        yield server


def on_s3(platform: PlatformSettings, s3: S3Proxy) -> PlatformSettings:
    return platform.model_copy(
        update={
            "attachments_s3_endpoint": s3.endpoint,
            "attachments_s3_bucket": BUCKET,
            "attachments_s3_access_key_id": s3.access_key_id,
            "attachments_s3_secret_access_key": SecretStr(s3.secret_access_key),
        }
    )


@pytest.fixture(params=["files", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, platform: PlatformSettings) -> AttachmentStore:
    if request.param == "files":
        return FileStore(tmp_path)
    return store_for(on_s3(platform, request.getfixturevalue("s3")), "contract")


async def test_both_stores_keep_put_get_and_delete_alike(store: AttachmentStore) -> None:
    kept, other = uuid.uuid4(), uuid.uuid4()
    await store.put(kept, b"%PDF-1.7 first")
    await store.put(kept, b"%PDF-1.7 second")  # a put again replaces
    await store.put(other, b"\x89PNG other")
    assert await store.get(kept) == b"%PDF-1.7 second"
    await store.delete(kept)
    await store.delete(kept)  # deleting what is gone is no error
    with pytest.raises(FileNotFoundError):
        await store.get(kept)
    assert await store.get(other) == b"\x89PNG other"


def test_the_s3_store_is_chosen_by_its_endpoint_and_refuses_a_bad_one(platform: PlatformSettings) -> None:
    assert isinstance(store_for(platform, "complaints"), FileStore)
    chosen = store_for(platform.model_copy(update={"attachments_s3_endpoint": "https://s3.example.id"}), "x")
    assert isinstance(chosen, S3Store) and chosen.prefix == "x" and chosen.bucket == BUCKET
    with pytest.raises(ValueError, match="http"):
        store_for(platform.model_copy(update={"attachments_s3_endpoint": "s3.example.id"}), "x")


@pytest.fixture
async def complaints(
    platform: PlatformSettings, fresh_database: str, s3: S3Proxy
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ComplaintsSettings(
        database_url=fresh_database,
        platform=on_s3(platform, s3),
        sla_check_seconds=3600,
        attachment_purge_seconds=0.5,
    )
    async with running(build(settings)) as client:
        yield client


async def test_a_complaints_photo_lives_in_the_bucket_until_the_citizen_is_erased(
    complaints: httpx.AsyncClient, s3: S3Proxy
) -> None:
    uploaded = await complaints.post(
        "/complaints/photos", files={"file": ("jalan.jpg", phone_photo(), "image/jpeg")}
    )
    assert uploaded.status_code == 201, uploaded.text
    photo = uploaded.json()
    key = f"complaints/{uuid.UUID(photo['id']).hex[:2]}/{uuid.UUID(photo['id']).hex}"
    assert key in s3.objects(BUCKET)
    filed = await complaints.post("/complaints", json=complaint_body(photos=[photo["id"]]))
    assert filed.status_code == 201, filed.text
    code = filed.json()["tracking_code"]

    coordinator = officer_headers("coordinator")
    shown = await complaints.get(f"/officer/complaints/{code}/photos/{photo['id']}", headers=coordinator)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert (s3.work_dir / "data" / BUCKET / key).read_bytes() == shown.content

    erased = await complaints.post(
        "/admin/citizens/erase", json={"nik": NIK}, headers=officer_headers("admin")
    )
    assert erased.json()["erased"] == {"complaints": 1, "photos": 1, "notes": 0}
    await wait_for(lambda: key not in s3.objects(BUCKET), timeout=10)
    gone = await complaints.get(f"/officer/complaints/{code}/photos/{photo['id']}", headers=coordinator)
    assert gone.status_code == 404
