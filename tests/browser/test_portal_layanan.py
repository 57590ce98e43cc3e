"""Layanan saya in a real browser: a complaint filed with an email address, then signing
in with that address and the code the suite's SMTP sink received, the complaint in the
list (from the integration view) linking to its tracking page, the notification
preferences saved with the session (read back from the notification service with a
session of the test's own), signing out. Every page is audited as in test_portal.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.browser.citizen_portal_support import CitizenStack, citizen_stack, go_on, prove
from tests.browser.portal_support import DESKTOP, PHONE
from tests.browser.test_portal import browser, browsing, chromium, words
from tests.citizen_support import open_session
from tests.harness import wait_for
from tests.integration.test_complaints_service import complaint_body

__all__ = ["browser", "chromium"]  # the browser fixtures, shared with test_portal.py


@pytest.fixture(scope="module")
async def stack(
    infra: Infrastructure, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> AsyncIterator[CitizenStack]:
    async with citizen_stack(infra, smtp_sink, fake_gateway) as started:
        yield started


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
        async def listed() -> bool:
            if code in await page.inner_text("#layanan"):
                return True
            await page.reload()
            return False

        await wait_for(listed, timeout=30, interval=1)
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
