"""One citizen on a phone uses the portal's three journeys with one mobile number —
reports a broken road with a photo, applies for a PBG with its documents and books an
internal-medicine place — and then finds all three under "Layanan saya": every service
its own process on the suite's broker and PostgreSQL, the integration view following the
bus, as `make run` starts them.
"""

from __future__ import annotations

from typing import Any

from tests.browser.citizen_portal_support import (
    CitizenStack,
    go_on,
    prove,
    until_listed,
)
from tests.browser.portal_support import PHONE
from tests.browser.test_portal import NIK, browsing, lapor
from tests.browser.test_portal_antrean import to_the_phone_page
from tests.browser.test_portal_izin import DRAWING, KTP, PBG_DOCUMENTS, to_the_documents, upload

# The number Lapor's reporter gives (tests/browser/test_portal.py), used for all three.
MOBILE = "0812 3456 7890"


async def test_a_complaint_an_application_and_a_booking_all_appear_under_layanan_saya(
    browser: Any, stack: CitizenStack
) -> None:
    async with browsing(browser, stack, PHONE, "tiga-layanan") as (page, audit):  # type: ignore[arg-type]
        complaint = await lapor(page, audit, stack, title="Jalan desa berlubang dekat balai desa")  # type: ignore[arg-type]

        await to_the_documents(page, audit, stack, phone=MOBILE)  # type: ignore[arg-type]
        for document in PBG_DOCUMENTS:
            await audit.page(page, f"dokumen-{document}")
            await upload(page, "berkas", KTP if document == "ktp" else DRAWING, "Unggah dan lanjutkan")
        await audit.page(page, "izin-periksa")
        await go_on(page, "Ajukan izin")
        await audit.page(page, "izin-selesai")
        assert await page.inner_text("h1") == "Permohonan izin terkirim"
        application = (await page.inner_text("#kode")).strip()

        await to_the_phone_page(page, audit, stack, NIK)
        await prove(page, audit, stack, MOBILE, "antrean-periksa")
        await go_on(page, "Daftar antrean")
        await audit.page(page, "antrean-selesai")
        assert await page.inner_text("h1") == "Antrean terdaftar"
        booking = (await page.inner_text("#kode")).strip()

        # The phone proved for the booking signs the citizen in to Layanan saya, where the
        # three appear once the integration view has them (it follows the bus).
        await page.goto(stack.portal + "/layanan")
        await audit.page(page, "layanan")
        assert page.url.endswith("/layanan")
        await until_listed(page, complaint, application, booking)
        await audit.page(page, "layanan-tiga")
        for code in (complaint, application, booking):
            assert await page.locator(f"a[href='/lacak?kode={code}']").count() == 1
        audit.check()
