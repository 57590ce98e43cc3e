"""Antrean in a real browser: a polyclinic place booked from the portal against the
health and notification services started as processes (the code read from the suite's
fake WhatsApp/SMS gateway), then cancelled with the button on the booked page. Every
page reached is audited as in test_portal.py (axe-core where JavaScript runs, weight,
origins, a screenshot in test-artifacts/portal/).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import httpx
import pytest

from shared.kit.clock import utc_now
from shared.kit.limits import limit_key
from shared.kit.settings import PlatformSettings
from shared.reference import default_calendar
from tests.browser.citizen_portal_support import FULL_WEEKDAY, CitizenStack, fill_a_day, go_on, prove
from tests.browser.portal_support import DESKTOP, PHONE, Audit
from tests.browser.test_portal import browsing, words
from tests.harness import db_fetchval
from tests.practice_days import practice_days

FACILITY, POLYCLINIC = "RSUD-TJITRO", "INT"
JKN_CARD = "0001234567890"


async def to_the_phone_page(page: Any, audit: Audit, stack: CitizenStack, nik: str) -> date:
    """From the home page through facility, polyclinic, a day with places and the patient;
    the day chosen."""
    await page.goto(stack.portal + "/")
    await audit.page(page, "beranda")
    await page.get_by_role("link", name="Ambil antrean poliklinik").click()
    await audit.page(page, "fasilitas")
    await page.check(f"input[name='fasilitas'][value='{FACILITY}']")
    await go_on(page)
    await audit.page(page, "poli")
    await page.check(f"input[name='poli'][value='{POLYCLINIC}']")
    await go_on(page)
    await audit.page(page, "tanggal")
    # The next Tuesday with practice is offered as full, not choosable; other days say what
    # is left (the page's days start tomorrow in the service's zone; holidays are not listed).
    calendar = default_calendar()
    later = practice_days(calendar, calendar.local_date(utc_now()), 14)
    tuesday = next(day for day in later if day.weekday() == FULL_WEEKDAY)
    full = page.locator(f"input[name='tanggal'][value='{tuesday.isoformat()}']")
    assert await full.is_disabled()
    assert "Kuota penuh" in await page.inner_text(f"#{await full.get_attribute('id')}-places")
    open_day = page.locator("input[name='tanggal']:not([disabled])").first
    chosen = date.fromisoformat(await open_day.get_attribute("value"))
    await open_day.check()
    await go_on(page)
    await audit.page(page, "pasien")
    await page.fill("#nik", nik)
    await page.fill("#nama", "Siti Aminah")
    await page.check("input[name='bayar'][value='jkn']")
    await page.fill("#kartu", JKN_CARD)
    await page.check("input[name='baru'][value='tidak']")
    await go_on(page)
    await audit.page(page, "telepon")
    return chosen


@pytest.mark.parametrize(
    ("viewport", "javascript", "phone", "nik"),
    [
        (PHONE, True, "081234560101", "3306061708900011"),
        (DESKTOP, True, "081234560102", "3306061708900012"),
        (PHONE, False, "081234560103", "3306061708900013"),
    ],
    ids=["phone", "desktop", "phone-without-javascript"],
)
async def test_antrean_books_a_place_with_a_verified_phone_and_cancels_it(
    browser: Any,
    stack: CitizenStack,
    viewport: dict[str, int],
    javascript: bool,
    phone: str,
    nik: str,
    request: Any,
) -> None:
    label = "antrean-" + request.node.callspec.id
    async with browsing(browser, stack, viewport, label, javascript=javascript) as (page, audit):  # type: ignore[arg-type]
        await to_the_phone_page(page, audit, stack, nik)
        before = len(stack.codes(phone))
        await page.fill("#kontak", phone)
        await go_on(page, "Kirim kode")
        await audit.page(page, "kode")
        # Where the code went, masked as the notification service answers it.
        assert f"+62812*****{phone[-3:]}" in await page.inner_text("#terkirim")
        code = await stack.new_code(phone, before)

        # A wrong code is said next to the field, and nothing is booked.
        await page.fill("#kode", f"{(int(code) + 1) % 1_000_000:06d}")
        await go_on(page)
        await audit.page(page, "kode-salah")
        assert (await words(page, "#kode-error")).startswith("Kesalahan: Kode salah atau sudah tidak berlaku")
        assert "Kode salah" in await page.inner_text(".error-summary")

        await page.fill("#kode", code)
        await go_on(page)
        await audit.page(page, "periksa")
        summary = await page.inner_text(".summary-list")
        assert "RSUD Dr. Tjitrowardojo Purworejo" in summary and "Poli Penyakit Dalam" in summary
        assert nik in summary and JKN_CARD in summary
        await go_on(page, "Daftar antrean")
        await audit.page(page, "selesai")
        assert await page.inner_text("h1") == "Antrean terdaftar"
        booking_code = (await page.inner_text("#kode")).strip()
        assert (await page.inner_text("#antrean")).startswith("A-")
        assert "WIB" in await page.inner_text("#perkiraan")

        # The booking is really in the health service, for this patient's day.
        found = (await stack.health_api("GET", f"/appointments/{booking_code}")).json()
        assert found["status"] == "booked" and found["polyclinic"] == POLYCLINIC
        assert found["queue_code"] == (await page.inner_text("#antrean")).strip()

        await go_on(page, "Batalkan antrean")
        await audit.page(page, "dibatalkan")
        assert await page.get_attribute("#status", "data-status") == "cancelled"
        assert await page.locator("form[action^='/antrean/batal/']").count() == 0
        found = (await stack.health_api("GET", f"/appointments/{booking_code}")).json()
        assert found["status"] == "cancelled"
        audit.check()
        assert len(audit.pages) == 11


async def test_asking_for_codes_too_often_says_when_to_try_again(browser: Any, stack: CitizenStack) -> None:
    """The notification service's limit per contact (3 codes in 15 minutes) comes back as
    the portal's page with the minutes to wait and the service's Retry-After."""
    phone = "081234560199"
    async with browsing(browser, stack, DESKTOP, "antrean-terlalu-sering") as (page, audit):  # type: ignore[arg-type]
        await page.goto(stack.portal + "/masuk?untuk=antrean")
        await audit.page(page, "telepon")
        await page.fill("#kontak", phone)
        await go_on(page, "Kirim kode")
        await audit.page(page, "kode")
        for _ in range(2):
            await go_on(page, "Kirim kode baru")
        assert await page.get_by_role("status").inner_text() == "Kode baru sudah dikirim."
        async with page.expect_navigation() as navigation:
            await go_on(page, "Kirim kode baru")
        response = await navigation.value
        await audit.page(page, "terlalu-sering")
        assert response.status == 429
        retry_after = int(await response.header_value("retry-after"))
        assert 0 < retry_after <= 900
        minutes = math.ceil(retry_after / 60)
        assert f"Coba lagi dalam {minutes} menit." in await page.inner_text("main")
        audit.check()


async def test_the_services_count_their_limits_per_citizen_not_per_portal(stack: CitizenStack) -> None:
    """The portal names the citizen's address (from its own trusted edge) to the services
    it calls, so a code asked through it counts under the citizen's address."""
    citizen = "203.0.113.7"
    limit = "notifications.codes.client"
    counted = "SELECT count(*) FROM rate_limit WHERE name = $1 AND key = $2"
    key = limit_key(PlatformSettings(), citizen)
    async with httpx.AsyncClient(
        base_url=stack.portal, timeout=30, headers={"X-Forwarded-For": citizen}
    ) as client:
        page = await client.get("/masuk?untuk=antrean", follow_redirects=True)
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert await db_fetchval(stack.notifications_database, counted, limit, key) == 0
        sent = await client.post("/masuk/kontak", data={"csrf": token, "kontak": "081234560198"})
        assert sent.status_code == 303 and sent.headers["location"] == "/masuk/kode"
    assert await db_fetchval(stack.notifications_database, counted, limit, key) == 1


async def test_a_day_that_fills_up_before_booking_is_refused_on_the_check_page(
    browser: Any, stack: CitizenStack
) -> None:
    """Places are read again at booking: a day taken while the citizen signed in gets the
    health service's refusal in the error summary of the check page, and no booking."""
    phone, nik = "081234560104", "3306061708900014"
    async with browsing(browser, stack, PHONE, "antrean-habis") as (page, audit):  # type: ignore[arg-type]
        day = await to_the_phone_page(page, audit, stack, nik)
        await prove(page, audit, stack, phone, "periksa")
        for doctor in ("RSUD-D01", "RSUD-D02"):  # the internists: nobody has a place that day
            await fill_a_day(stack, doctor, day.weekday())
        async with page.expect_navigation() as navigation:
            await go_on(page, "Daftar antrean")
        assert (await navigation.value).status == 422
        await audit.page(page, "periksa-penuh")
        assert "tempat pada tanggal itu sudah tidak tersedia" in await page.inner_text(".error-summary")
        assert page.url.endswith("/antrean/periksa")
        audit.check()
