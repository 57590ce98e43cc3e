"""Izin in a real browser: a PBG applied for from the portal with its documents, against
the permits service started as a process; an officer (through the permits API, with an
officer token) sends it back for one document, and the citizen uploads it from Lacak
and sends it, after which Lacak shows the clock running again. Files that are no
document, or too large, are refused next to the field with nothing kept; with the
permits service stopped Izin says so while Lapor still files. Every page reached is
audited as in test_portal.py (axe-core, weight, origins, a screenshot in
test-artifacts/portal/).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.kit.attachments import MAX_BYTES, AttachmentKind
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.attachment_support import pdf, phone_photo
from tests.browser.citizen_portal_support import prove
from tests.browser.portal_support import DESKTOP, PHONE, Audit, Stack, portal_stack
from tests.browser.test_portal import (
    DESA,
    KECAMATAN,
    NIK,
    VIEWPORTS,
    assert_filed,
    browsing,
    label_of,
    lapor,
    words,
)
from tests.harness import db_fetchval, officer_headers

OFFICER = officer_headers("permit_officer", subject="petugas-dpmptsp")
# A PBG's required documents in the catalogue's order (services/permits/permit_types.yaml).
PBG_DOCUMENTS = ("ktp", "bukti_tanah", "krk", "gambar_arsitektur", "gambar_struktur", "gambar_mep")
# A KTP photographed with a phone; the drawings as PDFs.
KTP = {"name": "ktp.jpg", "mimeType": "image/jpeg", "buffer": phone_photo()}
DRAWING = {"name": "gambar.pdf", "mimeType": "application/pdf", "buffer": pdf(2)}
UPLOADS = "SELECT count(*) FROM attachment"
NIB = "9120001234567"
APPLICANT_PHONES = {
    "phone": "0812 3456 7801",
    "desktop": "0812 3456 7802",
    "phone-without-javascript": "0812 3456 7803",
}


@pytest.fixture(scope="module")
async def stack(
    infra: Infrastructure, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> AsyncIterator[Stack]:
    async with portal_stack(infra, citizens=(smtp_sink, fake_gateway)) as started:
        yield started


async def go_on(page: Any, button: str = "Lanjutkan") -> None:
    await page.get_by_role("button", name=button, exact=True).click()


async def to_the_documents(
    page: Any,
    audit: Audit | None,
    stack: Stack,
    *,
    floors: str = "2",
    phone: str = "0812 3456 7890",
    business: bool = False,
) -> None:
    """From the home page through the PBG's questions to its first document's page."""

    async def seen(name: str) -> None:
        if audit is not None:
            await audit.page(page, name)

    await page.goto(stack.portal + "/")
    await seen("beranda")
    await page.get_by_role("link", name="Ajukan izin").click()
    await seen("jenis")
    await page.check("input[name='jenis'][value='pbg']")
    await go_on(page)
    await seen("syarat")
    assert await page.inner_text("#sla") == "Diproses paling lama 28 hari kerja."
    listed = await page.locator("#syarat li").all_inner_texts()
    assert len(listed) == len(PBG_DOCUMENTS) and "Keterangan Rencana Kabupaten (KRK)" in listed
    await go_on(page)
    await seen("kecamatan")
    await page.select_option("#kecamatan", KECAMATAN)
    await go_on(page)
    await seen("desa")
    await page.select_option("#desa", DESA)
    await go_on(page)
    await seen("sebagai")
    await page.check(f"input[name='sebagai'][value='{'badan_usaha' if business else 'perorangan'}']")
    await go_on(page)
    await seen("pemohon")
    if business:
        await page.fill("#nib", NIB)
        await page.fill("#nama", "CV Maju Bangun")
    else:
        await page.fill("#nik", NIK)
        await page.fill("#nama", "Budi Santoso")
    await page.fill("#telepon", phone)
    await go_on(page)
    await seen("fungsi")
    await page.check("input[name='building_function'][value='hunian']")
    await go_on(page)
    for name, typed in (
        ("building_area_m2", "120,5"),
        ("floors", floors),
        ("land_area_m2", ""),
        ("building_height_m", ""),
    ):
        await seen(name)
        await page.fill(f"#{name}", typed)
        await go_on(page)
        if name == "floors" and typed == "0":
            # The catalogue's least is 1: said on the page itself, in plain words.
            await seen("lantai-ditolak")
            assert await words(page, "#floors-error") == "Kesalahan: Tulis angka 1 atau lebih"
            await page.fill("#floors", "2")
            await go_on(page)


async def upload(page: Any, field: str, file: dict[str, Any], button: str) -> None:
    await page.set_input_files(f"#{field}", file)
    await go_on(page, button)


async def officer(stack: Stack, method: str, path: str, **request: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.permits, timeout=30, headers=OFFICER) as client:
        answer = await client.request(method, path, **request)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    ("viewport", "javascript"),
    [(PHONE, True), (DESKTOP, True), (PHONE, False)],
    ids=["phone", "desktop", "phone-without-javascript"],
)
async def test_a_pbg_with_its_documents_sent_back_for_one_and_completed_from_lacak(
    browser: Any, stack: Stack, viewport: dict[str, int], javascript: bool, request: Any
) -> None:
    label = "izin-" + request.node.callspec.id
    # Each run's applicant has a phone of their own (a phone gets 3 codes in 15 minutes).
    phone = APPLICANT_PHONES[request.node.callspec.id]
    async with browsing(browser, stack, viewport, label, javascript=javascript) as (page, audit):
        # Floors 0: refused on its page with the least the permits catalogue publishes.
        await to_the_documents(page, audit, stack, floors="0", phone=phone)
        for code in PBG_DOCUMENTS:
            await audit.page(page, f"dokumen-{code}")
            await upload(page, "berkas", KTP if code == "ktp" else DRAWING, "Unggah dan lanjutkan")
        await audit.page(page, "periksa")
        summary = await page.inner_text(".summary-list")
        assert "Harjobinangun, Grabag" in summary and "Hunian (rumah tinggal)" in summary
        assert "120,5" in summary and "Tidak diisi" in summary
        assert (await page.locator(".summary-row").count()) == 6 + 5 + len(PBG_DOCUMENTS)
        await go_on(page, "Ajukan izin")

        await audit.page(page, "selesai")
        assert await page.inner_text("h1") == "Permohonan izin terkirim"
        assert await page.inner_text("#sla") == "Permohonan diproses paling lama 28 hari kerja."
        assert await page.locator(".qr-image svg").count() == 1
        code = (await page.inner_text("#kode")).strip()
        filed = await officer(stack, "GET", f"/officer/applications/{code}")
        assert filed["details"] == {"building_function": "hunian", "building_area_m2": 120.5, "floors": 2}
        files = {d["code"]: d["file"] for d in filed["document_refs"]}
        assert set(files) == set(PBG_DOCUMENTS)
        assert files["ktp"]["media_type"] == "image/jpeg" and files["krk"]["media_type"] == "application/pdf"
        # Applied: the portal keeps nothing of it.
        drafts = "SELECT count(*) FROM drafts WHERE journey = 'izin' AND answers->>'nama' = 'Budi Santoso'"
        assert await db_fetchval(stack.portal_database, drafts) == 0

        # The officer finds the KRK outdated: back to the applicant, the clock paused.
        await officer(
            stack,
            "POST",
            f"/officer/applications/{code}/document-check",
            json={"outcome": "incomplete", "missing": ["krk"], "note": "KRK sudah kedaluwarsa"},
        )
        await page.get_by_role("link", name="Lihat perkembangan permohonan").click()
        await audit.page(page, "lacak-berkas-kurang")
        assert await page.get_attribute("#status", "data-status") == "documents_incomplete"
        assert await page.get_attribute("#sla", "data-sla") == "paused"
        # Only the applicant sends documents: they prove the phone they gave, and come back.
        assert await page.locator(".missing-document").count() == 0
        asked = await page.locator("#berkas-diminta li").all_inner_texts()
        assert asked == ["Keterangan Rencana Kabupaten (KRK)"]
        await page.get_by_role("link", name="Masuk untuk mengirim berkas").click()
        await audit.page(page, "masuk-pemohon")
        # The sign-in says what it is for, and leads back to the application.
        assert await page.inner_text("h1") == "Masuk untuk mengirim berkas"
        assert (await page.get_attribute(".back-link", "href") or "").startswith(f"/lacak?kode={code}")
        await prove(page, audit, stack, phone, "lacak-pemohon", nik=NIK)
        assert await page.get_attribute("#status", "data-status") == "documents_incomplete"
        assert await page.locator(".missing-document").count() == 1
        assert await page.inner_text("label[for='berkas-krk']") == "Keterangan Rencana Kabupaten (KRK)"

        # Sending before uploading: the field says what is missing.
        await go_on(page, "Kirim kelengkapan berkas")
        await audit.page(page, "lacak-belum-diunggah")
        assert await words(page, "#berkas-krk-error") == "Kesalahan: Pilih berkas yang akan diunggah"
        await upload(page, "berkas-krk", DRAWING, "Unggah berkas")
        await audit.page(page, "lacak-terunggah")
        assert await page.inner_text("#berkas-krk-status") == "Terunggah"
        await go_on(page, "Kirim kelengkapan berkas")
        await audit.page(page, "lacak-terkirim")
        assert await page.inner_text("#terkirim") == "Berkas terkirim. Batas waktu layanan berjalan lagi."
        assert await page.get_attribute("#status", "data-status") == "submitted"
        assert await page.get_attribute("#sla", "data-sla") == "on_track"
        assert (await page.inner_text("#sla")).startswith("Berjalan, sisa ")
        lines = await page.locator("#riwayat .timeline-what").all_inner_texts()
        assert lines[-2:] == ["Berkas belum lengkap", "Anda mengirim kelengkapan berkas"]
        assert await page.locator(".missing-document").count() == 0

        resubmitted = await officer(stack, "GET", f"/officer/applications/{code}")
        assert resubmitted["status"] == "submitted" and resubmitted["sla"]["state"] == "on_track"
        krk = next(d["file"] for d in resubmitted["document_refs"] if d["code"] == "krk")
        assert krk["id"] != files["krk"]["id"]

        await page.get_by_role("link", name="Ganti bahasa ke English").click()
        await audit.page(page, "lacak-english")
        assert (await page.inner_text("#sla")).startswith("Running, ")
        audit.check()


async def test_a_business_applies_for_a_pbg_with_its_nib(browser: Any, stack: Stack) -> None:
    """A PBG is a person's or a business's: applying as a business asks the NIB and the
    business's name, and the application is the business's."""
    async with browsing(browser, stack, DESKTOP, "izin-badan-usaha") as (page, audit):
        await to_the_documents(page, audit, stack, phone="0812 3456 7809", business=True)
        for code in PBG_DOCUMENTS:
            await upload(page, "berkas", KTP if code == "ktp" else DRAWING, "Unggah dan lanjutkan")
        await audit.page(page, "periksa")
        summary = await page.inner_text(".summary-list")
        assert "Badan usaha" in summary and NIB in summary and "CV Maju Bangun" in summary
        await go_on(page, "Ajukan izin")
        await audit.page(page, "selesai")
        code = (await page.inner_text("#kode")).strip()
        filed = await officer(stack, "GET", f"/officer/applications/{code}")
        assert filed["applicant"]["kind"] == "business" and filed["applicant"]["nib"] == NIB
        assert filed["applicant"]["name"] == "CV Maju Bangun"
        audit.check()


@VIEWPORTS
async def test_a_file_that_is_no_document_or_too_large_is_refused_next_to_the_field_keeping_nothing(
    browser: Any, stack: Stack, viewport: dict[str, int]
) -> None:
    before = await db_fetchval(stack.permits_database, UPLOADS)
    async with browsing(browser, stack, viewport, label_of("izin-berkas-ditolak", viewport)) as (page, audit):
        await to_the_documents(page, None, stack)
        program = {"name": "ktp.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00" + bytes(4096)}
        await upload(page, "berkas", program, "Unggah dan lanjutkan")
        await audit.page(page, "bukan-dokumen")
        assert await words(page, "#berkas-error") == "Kesalahan: Berkas harus berupa JPEG, PNG atau PDF."
        assert "Berkas harus berupa JPEG, PNG atau PDF." in await page.inner_text(".error-summary")
        assert "/izin/dokumen-ktp" in page.url

        oversize = {
            "name": "ktp.pdf",
            "mimeType": "application/pdf",
            "buffer": b"%PDF-1.7\n" + bytes(MAX_BYTES[AttachmentKind.DOCUMENT]),
        }
        await upload(page, "berkas", oversize, "Unggah dan lanjutkan")
        await audit.page(page, "terlalu-besar")
        assert await words(page, "#berkas-error") == "Kesalahan: Berkas lebih besar dari 10 MB."
        assert await db_fetchval(stack.permits_database, UPLOADS) == before

        # Going on without a file is refused too; the page keeps asking.
        await go_on(page, "Unggah dan lanjutkan")
        assert await words(page, "#berkas-error") == "Kesalahan: Pilih berkas yang akan diunggah"

        # The type is read from the content: a PDF named as a photo is a PDF document.
        await upload(
            page, "berkas", {**DRAWING, "name": "ktp.jpg", "mimeType": "image/jpeg"}, "Unggah dan lanjutkan"
        )
        await audit.page(page, "pdf-bernama-jpg")
        assert "/izin/dokumen-bukti_tanah" in page.url
        kept = "SELECT media_type FROM attachment ORDER BY created_at DESC LIMIT 1"
        assert await db_fetchval(stack.permits_database, kept) == "application/pdf"
        assert await db_fetchval(stack.permits_database, UPLOADS) == before + 1
        audit.check()


@VIEWPORTS
async def test_with_permits_stopped_izin_says_so_and_lapor_still_files(
    browser: Any, stack: Stack, viewport: dict[str, int]
) -> None:
    """Runs last in this module: it stops the module's permits service."""
    stack.stop("permits")
    async with browsing(browser, stack, viewport, label_of("izin-mati", viewport)) as (page, audit):
        response = await page.goto(stack.portal + "/izin")
        assert response.status == 503
        await audit.page(page, "izin-mati")
        text = await page.inner_text("main")
        assert "Layanan izin sedang tidak tersedia, coba lagi beberapa saat lagi." in text
        assert "Traceback" not in await page.content()

        title = f"Lampu jalan mati ({'phone' if viewport is PHONE else 'desktop'})"
        code = await lapor(page, audit, stack, title=title)
        await assert_filed(stack, code, title, located=True)
        audit.check()
