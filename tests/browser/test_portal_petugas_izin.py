"""The officers' desk in a real browser with the development sign-in (complaints, permits
and the portal as `make run` starts them without an identity provider): the licensing
office takes a PBG from its documents to an issued permit (a scan shown inline with the
headers of an attachment, an inspection date in the past refused with the error summary,
a stale form answered with a plain message, the permit's number and validity on the
page; what an officer typed into a form sent after their session ended is there again
once they have signed in again, and only then and there); an OPD officer sees the reporter's photo and resolves the complaint with a photo
of the finished work, which its reporter then sees in Lacak. Every page reached is
audited (axe-core, weight, origins, a screenshot in test-artifacts/portal/).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.permits.api import SubmitIn
from services.portal.petugas_rules import KEPT_FORM
from shared.kit.attachments import ATTACHMENT_CSP
from shared.kit.bodies import example_of
from shared.kit.clock import utc_now
from shared.kit.codes import WIB
from shared.reference.workdays import default_calendar
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from tests.attachment_support import pdf, phone_photo
from tests.browser.portal_support import DESKTOP, Audit, audited, send_form, service_processes
from tests.browser.test_portal import words
from tests.harness import db_execute, db_fetchval, new_database, officer_headers
from tests.integration.test_complaints_service import complaint_body

SERVICES = ("complaints", "permits", "portal")
SENT = 303  # a form taken: on to its page (see other)
OPD = "DPUPR"  # the roads' OPD (services/complaints/catalogue.yaml)


@pytest.fixture(scope="module")
async def desk(infra: Infrastructure) -> AsyncIterator[dict[str, str]]:
    """The services' addresses by name, each service its own process."""
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    portal = {
        "PORTAL_COMPLAINTS_URL": urls["complaints"],
        "PORTAL_PERMITS_URL": urls["permits"],
        "PORTAL_PUBLIC_URL": urls["portal"],
    }
    environments: dict[str, dict[str, str]] = {"complaints": {}, "permits": {}, "portal": portal}
    databases = {name: await new_database(infra) for name in SERVICES}
    specs = {name: (ports[name], databases[name], environments[name]) for name in SERVICES}
    async with service_processes(infra, specs):
        yield {**urls, "portal_database": databases["portal"]}


async def sign_in(page: Any, role: str, opd: str | None = None) -> None:
    """The development sign-in form, filled in and sent."""
    await page.fill("#nama", "Dewi Anggraini")
    await page.check(f"input[name='peran'][value='{role}']")
    if opd:
        await page.select_option("#opd", opd)
    await send_form(page, "Masuk")


@asynccontextmanager
async def signed_in(
    browser: Any, portal: str, label: str, role: str, opd: str | None = None
) -> AsyncIterator[tuple[Any, Audit]]:
    """A browser page of an officer signed in with the development sign-in."""
    async with audited(browser, portal, label, DESKTOP) as (page, audit):
        await page.goto(f"{portal}/petugas")
        await sign_in(page, role, opd)
        yield page, audit


async def apply_with_a_scan(permits: str) -> str:
    """A PBG whose KTP is an uploaded photo and its KRK an uploaded PDF (the other
    documents in the regency's store)."""
    uploads = {"ktp": ("ktp.jpg", phone_photo(), "image/jpeg"), "krk": ("krk.pdf", pdf(), "application/pdf")}
    async with httpx.AsyncClient(base_url=permits, timeout=30) as client:
        given = []
        for document, file in uploads.items():
            uploaded = await client.post("/applications/documents", files={"file": file})
            assert uploaded.status_code == 201, uploaded.text
            given.append({"code": document, "upload": uploaded.json()["id"]})
        body = example_of(SubmitIn)
        body["documents"] = [*given, *[d for d in body["documents"] if d["code"] not in uploads]]
        submitted = await client.post("/applications", json=body)
        assert submitted.status_code == 201, submitted.text
        return str(submitted.json()["tracking_code"])


def next_working_day() -> date:
    calendar, day = default_calendar(), utc_now().astimezone(WIB).date() + timedelta(days=1)
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day


async def test_a_pbg_from_its_documents_to_an_issued_permit(browser: Any, desk: dict[str, str]) -> None:
    code = await apply_with_a_scan(desk["permits"])
    async with signed_in(browser, desk["portal"], "petugas-izin-meja", "permit_officer") as (page, audit):
        assert urlsplit(page.url).path == "/petugas/izin"
        await page.goto(f"{desk['portal']}/petugas/izin/{code}")
        await audit.page(page, "permohonan-baru")
        # The KTP scan is on the page, drawn from the portal's own origin.
        scan = page.locator("tr[data-document='ktp'] img")
        assert await scan.evaluate("img => img.complete && img.naturalWidth > 0")
        address = await scan.get_attribute("src")
        shown = await page.request.get(f"{desk['portal']}{address}")
        assert shown.status == 200
        headers = shown.headers
        assert headers["content-type"] == "image/jpeg"
        assert headers["content-disposition"].startswith("inline;")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == ATTACHMENT_CSP
        opened = await page.context.new_page()
        answer = await opened.goto(f"{desk['portal']}{address}")
        assert answer is not None and answer.status == 200
        assert await opened.evaluate("document.images.length === 1 && document.images[0].naturalWidth > 0")
        await opened.close()
        # A PDF opens in a new page, in the browser's own viewer.
        [drawing] = await page.locator("tr[data-document='krk'] a[target='_blank']").all()
        assert "Buka PDF" in await drawing.inner_text()
        pdf_shown = await page.request.get(f"{desk['portal']}{await drawing.get_attribute('href')}")
        assert pdf_shown.status == 200 and pdf_shown.headers["content-type"] == "application/pdf"
        assert pdf_shown.headers["content-disposition"].startswith("inline;")
        assert (await pdf_shown.body()).startswith(b"%PDF")
        # Another application's code, or no id at all: an unknown document.
        unknown = await page.request.get(f"{desk['portal']}/petugas/izin/{code}/dokumen/bukan-id")
        assert unknown.status == 404

        await page.check("input[name='hasil'][value='complete']")
        assert await send_form(page, "Simpan hasil pemeriksaan") == SENT
        assert await page.inner_text("#status") == "Berkas lengkap"

        # A date already past: the error summary, nothing sent.
        await page.fill("#tanggal", "2020-01-06")
        await page.fill("#jam", "09:00")
        await page.fill("#peninjau", "Tim Teknis 2")
        assert await send_form(page, "Simpan jadwal peninjauan") == 422
        await audit.page(page, "jadwal-lampau")
        assert "harus di masa yang akan datang" in await words(page, ".error-summary")
        assert await page.input_value("#peninjau") == "Tim Teknis 2"
        await page.fill("#tanggal", next_working_day().isoformat())
        assert await send_form(page, "Simpan jadwal peninjauan") == SENT
        await audit.page(page, "jadwal-tersimpan")
        assert await page.inner_text("#status") == "Peninjauan dijadwalkan"
        assert "Tim Teknis 2" in await page.inner_text("#peninjauan")

        # A second page still showing the schedule's forms, to send one late.
        stale = await page.context.new_page()
        await stale.goto(page.url)

        await page.check("input[name='hasil_tinjau'][value='passed']")
        await page.fill("#temuan", "Bangunan sesuai gambar rencana.")
        assert await send_form(page, "Simpan hasil peninjauan") == SENT
        assert await page.inner_text("#status") == "Sudah ditinjau"
        await audit.page(page, "ditinjau")
        assert await send_form(page, "Setujui") == SENT
        assert await page.inner_text("#status") == "Disetujui"
        assert await send_form(page, "Terbitkan izin") == SENT
        await audit.page(page, "izin-terbit")
        assert await page.inner_text("#status") == "Izin terbit"
        async with httpx.AsyncClient(base_url=desk["permits"], timeout=30) as client:
            issued = (await client.get(f"/applications/{code}")).json()
        assert issued["status"] == "issued" and issued["permit_number"]
        assert await page.inner_text("#nomor-izin") == issued["permit_number"]
        assert await page.inner_text("#berlaku-sampai") != ""

        # The inspection recorded again from the stale page: a plain notice, not an error.
        await stale.check("input[name='hasil_tinjau'][value='failed']")
        assert await send_form(stale, "Simpan hasil peninjauan") == 409
        assert "tidak lagi dapat dilakukan" in await words(stale, "#sudah-berubah")
        assert await stale.inner_text("#status") == "Izin terbit"
        await stale.close()


async def dispatched_with_a_photo(complaints: str) -> str:
    """A complaint with the reporter's photo, verified and disposed to DPUPR."""
    coordinator = officer_headers("coordinator", subject="koordinator-meja")
    async with httpx.AsyncClient(base_url=complaints, timeout=30) as client:
        files = {"file": ("lubang.jpg", phone_photo(), "image/jpeg")}
        photo = (await client.post("/complaints/photos", files=files)).json()["id"]
        filed = await client.post("/complaints", json=complaint_body(photos=[photo]))
        assert filed.status_code == 201, filed.text
        code = str(filed.json()["tracking_code"])
        for step, body in (("verify", {}), ("dispatch", {"opd": OPD})):
            sent = await client.post(f"/officer/complaints/{code}/{step}", json=body, headers=coordinator)
            assert sent.status_code == 200, sent.text
    return code


async def test_an_opd_officer_resolves_with_a_photo_the_reporter_sees_in_lacak(
    browser: Any, desk: dict[str, str]
) -> None:
    code = await dispatched_with_a_photo(desk["complaints"])
    portal = desk["portal"]
    async with signed_in(browser, portal, "petugas-opd-foto", "opd_officer", OPD) as (page, audit):
        await page.goto(f"{portal}/petugas/aduan/{code}")
        await audit.page(page, "aduan-foto-pelapor")
        # The reporter's photo, shown inline from the portal's own origin.
        reporters = page.locator("#foto-pelapor img")
        assert await reporters.count() == 1
        assert await reporters.first.evaluate("img => img.complete && img.naturalWidth > 0")
        shown = await page.request.get(portal + str(await reporters.first.get_attribute("src")))
        assert shown.headers["content-disposition"].startswith("inline;")
        assert shown.headers["content-security-policy"] == ATTACHMENT_CSP

        # A PDF is no photo: the field says so, nothing resolved.
        await page.fill("#penyelesaian", "Lubang sudah ditambal dan diaspal ulang.")
        await page.set_input_files(
            "#foto_hasil", {"name": "hasil.pdf", "mimeType": "application/pdf", "buffer": pdf()}
        )
        assert await send_form(page, "Nyatakan selesai") == 422
        await audit.page(page, "selesai-bukan-foto")
        assert "harus JPEG atau PNG" in await words(page, ".error-summary")
        assert await page.input_value("#penyelesaian") == "Lubang sudah ditambal dan diaspal ulang."
        finished = {"name": "hasil.png", "mimeType": "image/png", "buffer": phone_photo("PNG")}
        await page.set_input_files("#foto_hasil", finished)
        assert await send_form(page, "Nyatakan selesai") == SENT
        await audit.page(page, "selesai-dengan-foto")
        assert await page.inner_text("#status") == "Selesai ditangani"
        assert await page.locator("#foto-hasil").evaluate("img => img.complete && img.naturalWidth > 0")

    citizen = await browser.new_context(viewport=DESKTOP, locale="id-ID")
    try:
        page = await citizen.new_page()
        audit = Audit(portal, "lacak-foto-hasil")
        audit.attach(page)
        await page.goto(f"{portal}/lacak?kode={code}")
        await audit.page(page, "lacak-selesai")
        assert "Foto hasil pekerjaan" in await words(page, ".resolution-photo")
        photo = page.locator("#foto-hasil")
        assert await photo.evaluate("img => img.complete && img.naturalWidth > 0")
        answer = await page.request.get(portal + str(await photo.get_attribute("src")))
        assert answer.status == 200 and answer.headers["content-type"] == "image/png"
        assert answer.headers["x-content-type-options"] == "nosniff"
    finally:
        await citizen.close()
    audit.check()


async def test_a_form_sent_after_the_session_ended_is_there_again_after_signing_in(
    browser: Any, desk: dict[str, str]
) -> None:
    code, portal, database = await apply_with_a_scan(desk["permits"]), desk["portal"], desk["portal_database"]
    page_path = f"/petugas/izin/{code}"
    note = "KRK sudah kedaluwarsa, mohon unggah yang baru."
    async with signed_in(browser, portal, "petugas-formulir", "permit_officer") as (page, audit):
        await page.goto(portal + page_path)
        await page.check("input[name='hasil'][value='incomplete']")
        await page.check("input[name='kurang'][value='krk']")
        await page.fill("#catatan_berkas", note)
        # The session ends meanwhile (idle for longer than its policy allows).
        await db_execute(
            database, "UPDATE officer_sessions SET last_seen_at = last_seen_at - interval '31 minutes'"
        )
        await send_form(page, "Simpan hasil pemeriksaan")
        assert urlsplit(page.url).path == "/petugas/masuk"
        kept = await db_fetchval(database, f"SELECT answers::text FROM drafts WHERE journey = '{KEPT_FORM}'")
        assert note in str(kept) and "csrf" not in str(kept)
        await sign_in(page, "permit_officer")
        assert urlsplit(page.url).path == page_path
        await audit.page(page, "formulir-dipulihkan")
        assert "dipulihkan" in await words(page, "#dipulihkan")
        assert await page.is_checked("input[name='hasil'][value='incomplete']")
        assert await page.is_checked("input[name='kurang'][value='krk']")
        assert not await page.is_checked("input[name='kurang'][value='ktp']")
        assert await page.input_value("#catatan_berkas") == note
        # Taken once: the same address again is the page as it is, the store empty.
        await page.reload()
        assert await page.locator("#dipulihkan").count() == 0
        assert await page.input_value("#catatan_berkas") == ""
        assert await db_fetchval(database, f"SELECT count(*) FROM drafts WHERE journey = '{KEPT_FORM}'") == 0

        # Kept longer than its time: nothing comes back.
        await page.fill("#catatan_berkas", note)
        await db_execute(
            database, "UPDATE officer_sessions SET last_seen_at = last_seen_at - interval '31 minutes'"
        )
        await send_form(page, "Simpan hasil pemeriksaan")
        await db_execute(
            database,
            f"UPDATE drafts SET updated_at = updated_at - interval '16 minutes' WHERE journey = '{KEPT_FORM}'",
        )
        await sign_in(page, "permit_officer")
        assert urlsplit(page.url).path == page_path
        assert await page.locator("#dipulihkan").count() == 0
        assert await page.input_value("#catatan_berkas") == ""
        assert await page.inner_text("#status") == "Baru"
