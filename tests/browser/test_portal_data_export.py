"""A citizen's data export in a real browser: "Unduh data saya" in Layanan saya, with
JavaScript (axe-core on every page) and without, after the sign-in with the phone the
citizen's complaint, permit application and booking gave; and the data protection
officer's "Data warga" page in the workspace (development sign-in as administrator),
its error summary for a NIK that is none, then the download by NIK. Each download is a
JSON file the browser saves (a plain form's POST, no script), holding every service's
part. The stack: every service and the portal, each its own process.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.citizen_portal_support import CitizenStack, prove
from tests.browser.portal_support import DESKTOP, PHONE, audited
from tests.browser.test_portal import browsing, words
from tests.browser.test_portal_operasi import sign_in
from tests.citizen_data_support import DOMAINS, Held, held_fixture

NIK = "3306061708900061"
PHONE_NUMBER = "081377770061"


# The session's citizen stack (tests/browser/conftest.py), this citizen's own data in it.
held = held_fixture(NIK, PHONE_NUMBER)


async def download(page: Any, button: str) -> tuple[str, dict[str, Any]]:
    """Press the form's button: the name the browser saves the file under, and the file."""
    async with page.expect_download() as started:
        await page.get_by_role("button", name=button, exact=True).click()
    saved = await started.value
    path = Path(await saved.path())
    return saved.suggested_filename, json.loads(await asyncio.to_thread(path.read_text))


def assert_everything(document: dict[str, Any], held: Held) -> None:
    assert document["services_answered"] == list(DOMAINS)
    parts = document["services"]
    assert [r["tracking_code"] for r in parts["complaints"]["complaints"]] == [held.complaint]
    assert [r["tracking_code"] for r in parts["permits"]["applications"]] == [held.application]
    assert [r["booking_code"] for r in parts["health"]["appointments"]] == [held.booking]
    assert held.complaint in {m["tracking_code"] for m in parts["notifications"]["notifications"]}
    assert held.codes <= {i["code"] for i in parts["integration"]["items"]}


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
async def test_the_citizen_downloads_their_data_from_layanan_saya(
    browser: Any, stack: CitizenStack, held: Held, javascript: bool, request: Any
) -> None:
    label = "data-saya-" + request.node.callspec.id
    async with browsing(browser, stack, PHONE, label, javascript=javascript) as (page, audit):  # type: ignore[arg-type]
        await page.goto(stack.portal + "/masuk?untuk=layanan")
        await audit.page(page, "masuk")
        await prove(page, audit, stack, PHONE_NUMBER, "layanan", nik=held.nik)
        assert page.url.endswith("/layanan")
        assert await page.inner_text("#data-saya") == "Data saya"
        name, document = await download(page, "Unduh data saya")
        assert name.startswith("data-saya-") and name.endswith(".json")
        assert NIK not in name and PHONE_NUMBER[1:] not in name
        assert_everything(document, held)
        messages = document["services"]["notifications"]["notifications"]
        assert held.phone in {m["address"] for m in messages}, "their own address, in clear"
        audit.check()


async def test_the_data_protection_officer_downloads_a_citizens_data_by_nik(
    browser: Any, stack: CitizenStack, held: Held
) -> None:
    async with audited(browser, stack.portal, "data-warga", DESKTOP) as (page, audit):
        await sign_in(page, stack, "Dina Pelindung Data", "admin")  # type: ignore[arg-type]
        await page.click("#nav-operasi")
        await page.wait_for_load_state("load")
        await page.get_by_role("link", name="Data warga").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "data-warga")
        assert await page.inner_text("h1") == "Data warga"

        await page.fill("#nik", "1234")
        async with page.expect_response(lambda r: r.request.method == "POST") as posted:
            await page.get_by_role("button", name="Unduh data warga", exact=True).click()
        assert (await posted.value).status == 422
        await page.wait_for_load_state("load")
        await audit.page(page, "data-warga-salah")
        assert "NIK harus 16 angka" in await words(page, ".error-summary")
        assert "NIK harus 16 angka" in await words(page, "#nik-error")

        await page.fill("#nik", held.nik)
        name, document = await download(page, "Unduh data warga")
        assert name.startswith("data-warga-") and NIK not in name
        assert_everything(document, held)
        messages = document["services"]["notifications"]["notifications"]
        assert held.phone not in {m["address"] for m in messages}, "masked for the officer"
