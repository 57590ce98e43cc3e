"""Layanan saya in a real browser: a complaint filed with an email address, then signing
in with that address and the code the suite's SMTP sink received, the complaint in the
list (from the integration view) linking to its tracking page, the notification
preferences saved with the session (read back from the notification service with a
session of the test's own), signing out. Every page is audited as in test_portal.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.citizen_portal_support import CitizenStack, go_on, prove, until_listed
from tests.browser.portal_support import DESKTOP, PHONE
from tests.browser.test_portal import browsing, words
from tests.citizen_support import open_session
from tests.harness import officer_headers, wait_for
from tests.integration.test_complaints_service import complaint_body


@pytest.mark.parametrize(
    ("viewport", "nik"),
    [(PHONE, "3306061708900021"), (DESKTOP, "3306061708900022")],
    ids=["phone", "desktop"],
)
async def test_layanan_saya_signs_in_by_email_saves_the_preferences_and_signs_out(
    browser: Any, stack: CitizenStack, viewport: dict[str, int], nik: str, request: Any
) -> None:
    email = f"warga-layanan-{request.node.callspec.id}@example.com"
    label = "layanan-saya-" + request.node.callspec.id
    async with httpx.AsyncClient(base_url=stack.complaints, timeout=30) as complaints:
        filed = await complaints.post(
            "/complaints", json=complaint_body(reporter={"nik": nik, "email": email})
        )
        assert filed.status_code == 201, filed.text
    code = filed.json()["tracking_code"]
    async with browsing(browser, stack, viewport, label) as (page, audit):  # type: ignore[arg-type]
        await page.goto(stack.portal + "/")
        await audit.page(page, "beranda")
        await page.get_by_role("link", name="Layanan saya").click()
        await audit.page(page, "masuk")
        assert await page.inner_text("h1") == "Masuk ke Layanan saya"
        await prove(page, audit, stack, email, "layanan", nik=nik)
        assert page.url.endswith("/layanan")
        assert await page.inner_text("#masuk-sebagai") == "Masuk sebagai w***@example.com."
        assert email not in await page.content()  # masked, never in full

        # The complaint is listed once the integration view has it (it follows the bus).
        await until_listed(page, code)
        await audit.page(page, "daftar")
        link = page.locator(f"a[href='/lacak?kode={code}']")
        assert await link.inner_text() == "Pengaduan: Jalan dan jembatan rusak"
        other = page.locator("#layanan .case-code")
        assert await other.all_inner_texts() == [code], "only what this contact started"

        # Quiet hours need both ends: the error is said next to the field.
        await page.select_option("#mulai", "21:00")
        await go_on(page, "Simpan pengaturan")
        await audit.page(page, "pengaturan-salah")
        assert await words(page, "#selesai-error") == "Kesalahan: Pilih jam selesai, atau kosongkan keduanya"

        await page.check("input[name='kanal'][value='email']")
        await page.check("input[name='bahasa'][value='en']")
        await page.select_option("#mulai", "21:00")
        await page.select_option("#selesai", "06:00")
        await go_on(page, "Simpan pengaturan")
        await audit.page(page, "pengaturan-tersimpan")
        assert await page.inner_text("#tersimpan") == "Pengaturan pemberitahuan tersimpan."
        assert await page.is_checked("input[name='kanal'][value='email']")
        assert await page.input_value("#selesai") == "06:00"

        # The notification service keeps them, for this NIK.
        async with httpx.AsyncClient(base_url=stack.notifications, timeout=30) as api:
            headers = await open_session(api, email, stack.sink, stack.gateway, nik=nik)
            kept = (await api.post("/preferences/lookup", headers=headers)).json()
        assert kept["channels"] == ["email"] and kept["locale"] == "en"
        assert kept["quiet_hours"] == {"start": "21:00", "end": "06:00"}

        # Signing out forgets the session: the list asks for a code again.
        await go_on(page, "Keluar")
        await audit.page(page, "keluar")
        await page.goto(stack.portal + "/layanan")
        assert page.url.endswith("/masuk/kontak")
        audit.check()


async def resolved_complaint(stack: CitizenStack, reporter: dict[str, str]) -> str:
    """A complaint filed with `reporter`, then verified, disposed and resolved by officers."""
    coordinator = officer_headers("coordinator")
    opd_officer = officer_headers("opd_officer", opd="DPUPR", subject="petugas-dpupr")
    async with httpx.AsyncClient(base_url=stack.complaints, timeout=30) as complaints:
        filed = await complaints.post("/complaints", json=complaint_body(reporter=reporter))
        assert filed.status_code == 201, filed.text
        code = filed.json()["tracking_code"]
        for step, body, headers in (
            ("verify", {}, coordinator),
            ("dispatch", {"opd": "DPUPR", "note": "Mohon ditindaklanjuti"}, coordinator),
            ("resolve", {"resolution": "Jalan sudah ditambal"}, opd_officer),
        ):
            answer = await complaints.post(f"/officer/complaints/{code}/{step}", json=body, headers=headers)
            assert answer.status_code == 200, (step, answer.text)
    return str(code)


async def test_a_resolved_complaint_is_reopened_or_rated_by_its_reporter(
    browser: Any, stack: CitizenStack
) -> None:
    """From Layanan saya, one question per page: "not fixed" with what is wrong reopens a
    complaint, "fixed" with a rating closes another; neither can be answered twice, and
    another contact's complaint is answered as an unknown code."""
    nik, email = "3306061708900023", "warga-aduan@example.com"
    not_fixed = await resolved_complaint(stack, {"nik": nik, "email": email})
    fixed = await resolved_complaint(stack, {"nik": nik, "email": email})
    theirs = await resolved_complaint(stack, {"nik": "3306061708900024", "email": "tetangga@example.com"})
    async with browsing(browser, stack, PHONE, "aduan-selesai") as (page, audit):  # type: ignore[arg-type]
        await page.goto(stack.portal + "/layanan")
        await prove(page, audit, stack, email, "layanan", nik=nik)

        async def both_resolved() -> bool:
            links = page.locator("a[href^='/layanan/aduan/']")
            if {await a.get_attribute("href") for a in await links.all()} == {
                f"/layanan/aduan/{not_fixed}",
                f"/layanan/aduan/{fixed}",
            }:
                return True
            await page.reload()
            return False

        await wait_for(both_resolved, timeout=30, interval=1)
        await audit.page(page, "daftar-selesai")

        await page.click(f"a[href='/layanan/aduan/{not_fixed}']")
        await audit.page(page, "tuntas")
        assert await page.inner_text("h1") == "Apakah masalah yang Anda adukan sudah beres?"
        await go_on(page)
        await audit.page(page, "tuntas-salah")
        assert await words(page, "#tuntas-error") == "Kesalahan: Pilih apakah masalahnya sudah beres"
        await page.get_by_label("Belum, masalahnya masih ada").check()
        await go_on(page)
        await audit.page(page, "belum-selesai")
        await page.fill("#alasan", "masih")
        await go_on(page, "Buka lagi aduan ini")
        await audit.page(page, "belum-selesai-salah")
        assert (
            await words(page, "#alasan-error")
            == "Kesalahan: Tuliskan sedikit lebih lengkap, paling tidak 10 huruf"
        )
        await page.fill("#alasan", "Lubangnya masih ada, tambalannya sudah lepas lagi")
        await go_on(page, "Buka lagi aduan ini")
        await audit.page(page, "dibuka")
        assert await page.inner_text("#terjawab") == (
            "Aduan Anda dibuka lagi dan dikembalikan ke OPD yang menanganinya."
        )

        await page.goto(f"{stack.portal}/layanan/aduan/{fixed}")
        await page.get_by_label("Ya, sudah beres").check()
        await go_on(page)
        await audit.page(page, "nilai")
        assert await page.inner_text("h1") == "Bagaimana penanganan aduan Anda?"
        await page.get_by_label("Baik", exact=True).check()
        await page.fill("#komentar", "Cepat ditangani, terima kasih")
        await go_on(page, "Kirim penilaian")
        await audit.page(page, "dinilai")
        assert (
            await page.inner_text("#terjawab")
            == "Terima kasih. Penilaian Anda sudah kami terima dan aduan ditutup."
        )

        # Answered once: the pages say so; another contact's complaint is unknown here.
        again = await page.goto(f"{stack.portal}/layanan/aduan/{fixed}/nilai")
        assert again is not None and again.status == 409
        await audit.page(page, "sudah-dijawab")
        other = await page.goto(f"{stack.portal}/layanan/aduan/{theirs}")
        assert other is not None and other.status == 404
        await audit.page(page, "bukan-miliknya")
        audit.check()

    async with httpx.AsyncClient(base_url=stack.complaints, timeout=30) as complaints:
        reopened = (await complaints.get(f"/complaints/{not_fixed}")).json()
        closed = (await complaints.get(f"/complaints/{fixed}")).json()
        untouched = (await complaints.get(f"/complaints/{theirs}")).json()
    assert reopened["status"] == "in_progress" and reopened["history"][-1]["action"] == "reopened"
    assert closed["status"] == "closed" and closed["history"][-1]["action"] == "rated"
    assert untouched["status"] == "resolved"
