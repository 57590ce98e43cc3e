"""The clinic workspace in a real browser, with the development sign-in (no identity
provider: the portal signs the kit's development tokens, which the health service
accepts). A health officer of a puskesmas signs in and lands on their facility's queue;
on a polyclinic's page they call the next number and the waiting-room display (a public
page, open in another browser without signing in) shows it, pushed over Server-Sent
Events; a visit's next BPJS task is set with its button; a ward's beds are refused with
an error summary when more are occupied than exist, then saved; another facility's
queue is the health service's 403, the "not authorised" page. Every page is audited
(axe-core, weight, origins, a screenshot in test-artifacts/portal/).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from shared.kit.settings import PlatformSettings
from shared.reference import default_calendar
from shared.runtime.dev_issuer import DevelopmentIssuer
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from tests.browser.portal_support import DESKTOP, Audit, audited, service_processes
from tests.browser.test_portal import words
from tests.harness import new_database, officer_headers
from tests.practice_days import clinic_today, practice_day

SERVICES = ("complaints", "health", "portal")
FACILITY, OTHER_FACILITY = "PKM-KUTOARJO", "PKM-BAYAN"
# A polyclinic of the test's own, practising every day all day, so today has a queue.
POLYCLINIC, DOCTOR = "KLN", "KLN-D01"
WARD = "RANAP"  # the puskesmas's ward (services/health/seed.yaml)
TV = {"width": 1920, "height": 1080}


@dataclass
class Clinic:
    portal: str
    health: str
    today: date  # the health service's (HEALTH_TODAY): a day the polyclinic practises
    codes: list[str]  # today's bookings at the test polyclinic, in queue order


async def today_with_a_queue(
    health: str,
    issuer: DevelopmentIssuer,
    today: date,
    facility: str = FACILITY,
    officer: dict[str, str] | None = None,
) -> list[str]:
    """The test polyclinic of `facility` with three patients booked for `today` (the
    health service's, `clinic_today`: a practice day), all checked in: the first two
    waiting for the polyclinic (task 3), the third at admission (task 1). `officer`: the
    facility officer's headers (a development token by default)."""
    officer = officer or officer_headers("health_officer", facility=facility)
    key = PlatformSettings().citizen_ref_key.get_secret_value()
    hours = {
        "start": "00:00",
        "end": "23:59",
        "minutes_per_patient": 10,
        "quota_jkn": 20,
        "quota_non_jkn": 20,
    }
    async with httpx.AsyncClient(base_url=health, timeout=30) as client:
        steps = [
            (
                f"/facilities/{facility}/polyclinics/{POLYCLINIC}",
                {"name": "Poli Klinik Uji", "queue_prefix": "K"},
            ),
            (
                f"/doctors/{DOCTOR}",
                {"name": "dr. Klinik Uji", "facility": facility, "polyclinic": POLYCLINIC},
            ),
            *((f"/doctors/{DOCTOR}/schedules/{weekday}", hours) for weekday in range(7)),
        ]
        for path, body in steps:
            made = await client.put(path, json=body, headers=officer)
            assert made.status_code == 200, (path, made.text)
        codes = []
        for n in (1, 2, 3):
            phone = f"08123456700{n}"
            booking = {
                "nik": f"3306061708900{n:03d}",
                "phone": phone,
                "facility": facility,
                "polyclinic": POLYCLINIC,
                "date": today.isoformat(),
                "payment": "non_jkn",
                "new_patient": False,
            }
            booked = await client.post("/appointments", json=booking, headers=issuer.session(key, phone))
            assert booked.status_code == 201, booked.text
            codes.append(booked.json()["booking_code"])
        for code in codes:
            assert (await client.post(f"/appointments/{code}/check-in")).status_code == 200
        for code in codes[:2]:
            for task in (2, 3):
                moved = await client.post(
                    f"/appointments/{code}/tasks", json={"task_id": task}, headers=officer
                )
                assert moved.status_code == 200, moved.text
    return codes


@pytest.fixture(scope="module")
async def clinic(infra: Infrastructure) -> AsyncIterator[Clinic]:
    """Complaints (the development sign-in lists its OPDs), health and the portal, each
    its own process, without an identity provider."""
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {name: await new_database(infra) for name in SERVICES}
    today = clinic_today(default_calendar())
    with DevelopmentIssuer() as issuer:
        environments = {
            "complaints": {},
            "health": {
                **issuer.env,
                "HEALTH_NO_SHOW_CHECK_SECONDS": "3600",
                "HEALTH_TODAY": today.isoformat(),
            },
            "portal": {
                "PORTAL_COMPLAINTS_URL": urls["complaints"],
                "PORTAL_HEALTH_URL": urls["health"],
                "PORTAL_UPSTREAM_TIMEOUT_SECONDS": "10",
            },
        }
        specs = {name: (ports[name], databases[name], environments[name]) for name in SERVICES}
        async with service_processes(infra, specs):
            codes = await today_with_a_queue(urls["health"], issuer, today)
            yield Clinic(urls["portal"], urls["health"], today, codes)


def visitor(browser: Any, clinic: Clinic, label: str, viewport: dict[str, int]) -> Any:
    return audited(browser, clinic.portal, label, viewport)


async def sign_in(page: Any, clinic: Clinic, audit: Audit) -> None:
    """The development sign-in as a health officer of FACILITY, from the workspace's door."""
    await page.goto(clinic.portal + "/petugas")
    await page.wait_for_url("**/petugas/masuk**")
    await audit.page(page, "masuk")
    await page.fill("#nama", "Sari Perawat")
    await page.check("input[name='peran'][value='health_officer']")
    await page.select_option("#fasilitas", FACILITY)
    await page.get_by_role("button", name="Masuk").click()
    await page.wait_for_url(f"{clinic.portal}/petugas/klinik/{FACILITY}")


async def test_an_officer_calls_the_next_number_and_the_display_shows_it(
    browser: Any, clinic: Clinic
) -> None:
    from playwright.async_api import expect

    async with (
        visitor(browser, clinic, "klinik", DESKTOP) as (page, audit),
        visitor(browser, clinic, "layar", TV) as (tv, tv_audit),
    ):
        await sign_in(page, clinic, audit)
        await audit.page(page, "antrean-hari-ini")
        row = page.locator(f"tr[data-poli='{POLYCLINIC}']")
        assert (await words(page, f"tr[data-poli='{POLYCLINIC}'] td:nth-of-type(2)")) == "2"
        await row.get_by_role("link").click()
        await page.wait_for_url(f"**/petugas/klinik/{FACILITY}/poli/{POLYCLINIC}")
        await audit.page(page, "poli")
        assert await words(page, "#sekarang") == "Belum ada"

        # The display: public, nobody signed in, queue numbers only.
        await tv.goto(clinic.portal + f"/antrean/layar/{FACILITY}/{POLYCLINIC}")
        await tv_audit.page(tv, "layar")
        assert await words(tv, "#dipanggil") == "—"
        assert await tv.locator("#berikutnya li").all_inner_texts() == ["K-001", "K-002"]
        shown = await words(tv, "body")
        assert "3306061708900" not in shown and "0812" not in shown and clinic.codes[0] not in shown

        await page.get_by_role("button", name="Panggil berikutnya").click()
        await expect(page.locator("#dipanggil")).to_have_text("Nomor K-001 dipanggil.")
        await audit.page(page, "dipanggil")
        # Pushed to the display, which was not reloaded.
        await expect(tv.locator("#dipanggil")).to_have_text("K-001")
        await expect(tv.locator("#berikutnya li")).to_have_text(["K-002"])
        await tv_audit.page(tv, "layar-dipanggil")

        # The third number, at admission: its next BPJS task is task 2.
        third = page.locator("tr[data-nomor='K-003']")
        await third.get_by_role("button", name="Tugas 2: Mulai layan admisi untuk nomor K-003").click()
        await expect(third.locator("td").nth(2)).to_have_text("2 · Mulai layan admisi")
        await expect(third.get_by_role("button")).to_have_text("Tugas 3: Mulai tunggu poli untuk nomor K-003")
        await audit.page(page, "tugas")


async def test_a_ward_refuses_more_occupied_beds_than_it_has_then_saves(browser: Any, clinic: Clinic) -> None:
    from playwright.async_api import expect

    async with visitor(browser, clinic, "klinik-tempat-tidur", DESKTOP) as (page, audit):
        await sign_in(page, clinic, audit)
        await page.get_by_role("link", name="Tempat tidur").click()
        await page.wait_for_url(f"**/petugas/klinik/{FACILITY}/tempat-tidur")
        await audit.page(page, "tempat-tidur")

        await page.fill(f"#total-{WARD}", "12")
        await page.fill(f"#terisi-{WARD}", "13")
        await page.get_by_role("button", name="Simpan Rawat Inap Puskesmas").click()
        summary = page.locator(".error-summary")
        await expect(summary).to_contain_text(
            "Tempat tidur terisi tidak boleh lebih dari jumlah tempat tidur"
        )
        await expect(page.locator("#terisi")).to_have_value("13")
        await audit.page(page, "tempat-tidur-salah")

        await page.fill("#total", "12")
        await page.fill("#terisi", "5")
        await page.get_by_role("button", name="Simpan Rawat Inap Puskesmas").click()
        await expect(page.locator("#disimpan")).to_have_text(f"Tempat tidur {WARD} disimpan.")
        await expect(page.locator(f"tr[data-ruang='{WARD}'] .available")).to_have_text("7")
        await audit.page(page, "tempat-tidur-disimpan")
    async with httpx.AsyncClient(base_url=clinic.health, timeout=30) as client:
        [ward] = (await client.get(f"/facilities/{FACILITY}/wards")).json()
    assert (ward["total"], ward["occupied"]) == (12, 5)


async def test_another_facilitys_queue_is_not_authorised(browser: Any, clinic: Clinic) -> None:
    async with visitor(browser, clinic, "klinik-lain", DESKTOP) as (page, audit):
        await sign_in(page, clinic, audit)
        answer = await page.goto(clinic.portal + f"/petugas/klinik/{OTHER_FACILITY}")
        assert answer is not None and answer.status == 403
        assert await words(page, "h1") == "Anda tidak berwenang"
        await audit.page(page, "bukan-fasilitasnya")
        answer = await page.goto(clinic.portal + f"/petugas/klinik/{OTHER_FACILITY}/poli/UMU")
        assert answer is not None and answer.status == 403


async def test_a_doctors_weekday_session_is_refused_when_it_ends_before_it_starts_then_saved(
    browser: Any, clinic: Clinic
) -> None:
    from playwright.async_api import expect

    # Not today's weekday: today's queue (the other tests') keeps its session.
    weekday = (clinic.today.weekday() + 1) % 7
    async with visitor(browser, clinic, "klinik-jadwal", DESKTOP) as (page, audit):
        await sign_in(page, clinic, audit)
        await page.get_by_role("link", name="Jadwal dokter").click()
        await page.wait_for_url(f"**/petugas/klinik/{FACILITY}/jadwal")
        await audit.page(page, "jadwal")
        row = page.locator(f"section[data-dokter='{DOCTOR}'] tr[data-hari='{weekday}']")
        await expect(row.locator("td").first).to_have_text("00:00–23:59")
        await row.get_by_role("link").click()
        await page.wait_for_url(f"**/jadwal/{DOCTOR}/{weekday}")
        await audit.page(page, "jadwal-ubah")
        # Only a weekday's address is a page: 0 (Monday) to 6 (Sunday), as when saving.
        for other in ("7", "-1", "senin"):
            answer = await page.goto(clinic.portal + f"/petugas/klinik/{FACILITY}/jadwal/{DOCTOR}/{other}")
            assert answer is not None and answer.status == 404
        await page.goto(clinic.portal + f"/petugas/klinik/{FACILITY}/jadwal/{DOCTOR}/{weekday}")

        await page.fill("#mulai", "13.00")
        await page.fill("#selesai", "09.00")
        await page.fill("#kuota_umum", "seribu")
        await page.get_by_role("button", name="Simpan jadwal").click()
        summary = page.locator(".error-summary")
        await expect(summary).to_contain_text("Jam selesai harus sesudah jam mulai")
        await expect(summary).to_contain_text("Kuota umum harus bilangan bulat 0 sampai 1.000")
        await audit.page(page, "jadwal-salah")

        await page.fill("#mulai", "08.00")
        await page.fill("#selesai", "12.30")
        await page.fill("#kuota_umum", "7")
        await page.get_by_role("button", name="Simpan jadwal").click()
        await expect(page.locator("#disimpan")).to_have_text(f"Jadwal dokter {DOCTOR} disimpan.")
        await expect(row.locator("td").first).to_have_text("08:00–12:30")
        await audit.page(page, "jadwal-disimpan")
    async with httpx.AsyncClient(base_url=clinic.health, timeout=30) as client:
        found = (await client.get(f"/facilities/{FACILITY}")).json()
    [saved] = [s for s in found["schedules"] if s["doctor"] == DOCTOR and s["weekday"] == weekday]
    assert (saved["start"], saved["end"], saved["quota_non_jkn"]) == ("08:00", "12:30", 7)


async def test_a_doctor_on_leave_on_one_date_is_recorded_and_that_day_offers_no_places(
    browser: Any, clinic: Clinic
) -> None:
    from playwright.async_api import expect

    # A day the polyclinic (open every weekday) practises by the service's rule, so the
    # leave is what leaves it without places: no holiday.
    day = practice_day(default_calendar(), clinic.today + timedelta(days=3))
    before = await _offered(clinic, day)
    assert before and all(s["doctor"] == DOCTOR for s in before), before
    async with visitor(browser, clinic, "klinik-cuti", DESKTOP) as (page, audit):
        await sign_in(page, clinic, audit)
        await page.goto(clinic.portal + f"/petugas/klinik/{FACILITY}/jadwal")
        await page.fill("#tanggal", "31-02-2026")
        await page.get_by_role("button", name="Simpan perubahan tanggal").click()
        summary = page.locator(".error-summary")
        await expect(summary).to_contain_text("Pilih dokter")
        await expect(summary).to_contain_text("Isi tanggal seperti 24-12-2026")
        await expect(summary).to_contain_text("Pilih perubahannya")
        await audit.page(page, "cuti-salah")

        await page.select_option("#dokter", DOCTOR)
        await page.fill("#tanggal", day.strftime("%d-%m-%Y"))
        await page.check("input[name='perubahan'][value='cuti']")
        await page.fill("#alasan", "dokter cuti")
        await page.get_by_role("button", name="Simpan perubahan tanggal").click()
        await expect(page.locator("#diubah")).to_contain_text("Perubahan tanggal disimpan")
        listed = page.locator(f"#perubahan tr[data-dokter='{DOCTOR}'][data-tanggal='{day.isoformat()}']")
        await expect(listed).to_contain_text("Dokter tidak praktik (cuti)")
        await expect(listed).to_contain_text("dokter cuti")
        await audit.page(page, "cuti-disimpan")
    assert await _offered(clinic, day) == []


async def _offered(clinic: Clinic, day: date) -> list[dict[str, Any]]:
    """The test polyclinic's sessions with places on `day`, as the health service offers them."""
    async with httpx.AsyncClient(base_url=clinic.health, timeout=30) as client:
        offered = await client.get(f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}/sessions?date={day}")
    assert offered.status_code == 200, offered.text
    return list(offered.json())


async def test_the_display_without_javascript_refreshes_itself(browser: Any, clinic: Clinic) -> None:
    context = await browser.new_context(viewport=TV, locale="id-ID", java_script_enabled=False)
    try:
        page = await context.new_page()
        answer = await page.goto(clinic.portal + f"/antrean/layar/{FACILITY}/{POLYCLINIC}")
        assert answer is not None and answer.status == 200
        refresh = page.locator("meta[http-equiv='refresh']")
        assert await refresh.get_attribute("content") == "5"
        async with httpx.AsyncClient(base_url=clinic.health, timeout=30) as client:
            board = (await client.get(f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}/queue")).json()
        assert await words(page, "#dipanggil") == (board["now_serving"] or ["—"])[-1]
        assert await page.locator("#berikutnya li").all_inner_texts() == board["upcoming"]
        unknown = await page.goto(clinic.portal + f"/antrean/layar/{FACILITY}/NOPE")
        assert unknown is not None and unknown.status == 404
    finally:
        await context.close()
