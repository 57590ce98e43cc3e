"""The citizens' portal in a real browser: Debian's Chromium driven by Playwright's
Python API, against the portal, complaints and permits services started as processes
on the suite's broker and PostgreSQL. Every page reached is checked with axe-core
(no serious or critical violation), for its weight (under 150 kB) and for requests to
another origin, and is kept as a screenshot in test-artifacts/portal/.

The browser test does not skip: /usr/bin/chromium (make system-deps) and axe-core
(`npm ci` in tests/browser/axe, run by `make test`) must be there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from shared.runtime.select import Infrastructure
from tests.attachment_support import pdf, phone_photo
from tests.browser.portal_support import (
    DESKTOP,
    PHONE,
    POSITION,
    SECURITY_HEADERS,
    Audit,
    Stack,
    officer_view,
    portal_stack,
    without_exif,
)
from tests.harness import db_fetchval, officer_headers, service_log

NIK = "3306061708900001"
KECAMATAN, DESA = "33.06.01", "33.06.01.2001"
OTHER_DESA = "33.06.01.2002"
VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
FOCUSED = """([selector, text]) => {
  const el = document.activeElement;
  return !!el && el.matches(selector) && (text === null || el.textContent.trim() === text);
}"""
JPEG = {"name": "jalan.jpg", "mimeType": "image/jpeg", "buffer": phone_photo()}


@pytest.fixture(scope="module")
async def stack(infra: Infrastructure) -> AsyncIterator[Stack]:
    async with portal_stack(infra) as started:
        yield started


@asynccontextmanager
async def browsing(
    browser: Any, stack: Stack, viewport: dict[str, int], label: str, *, javascript: bool = True
) -> AsyncIterator[tuple[Any, Audit]]:
    """A fresh browser context (no cookies) on `viewport`, its page and the page's audit."""
    context = await browser.new_context(
        viewport=viewport,
        locale="id-ID",
        java_script_enabled=javascript,
        geolocation=POSITION,
        permissions=["geolocation"],
    )
    page = await context.new_page()
    # axe-core is a script: pages of a browser without JavaScript are the same pages the
    # other journeys audit.
    audit = Audit(stack.portal, label, run_axe=javascript)
    audit.attach(page)
    try:
        yield page, audit
    finally:
        await context.close()


# ----- the journey, by pointer or by keyboard ------------------------------------------------


class Hands:
    """Fills the journey's pages with the mouse (clicks) or with the keyboard alone."""

    def __init__(self, page: Any, keyboard: bool) -> None:
        self.page = page
        self.keyboard = keyboard

    async def _tab_to(self, selector: str, text: str | None = None) -> None:
        """Press Tab until the focus is on `selector` (with `text`, when given)."""
        for _ in range(80):
            await self.page.keyboard.press("Tab")
            if await self.page.evaluate(FOCUSED, [selector, text]):
                return
        raise AssertionError(f"Tab never reached {selector} {text or ''}")

    async def follow(self, text: str) -> None:
        await self._activate("link", "a", text)

    async def press(self, text: str) -> None:
        await self._activate("button", "button", text)

    async def _activate(self, role: str, tag: str, text: str) -> None:
        """Click the link or button, or Tab to it and press Enter."""
        if self.keyboard:
            await self._tab_to(tag, text)
            async with self.page.expect_navigation():
                await self.page.keyboard.press("Enter")
        else:
            await self.page.get_by_role(role, name=text, exact=True).click()

    async def choose(self, name: str, value: str) -> None:
        if not self.keyboard:
            await self.page.check(f"input[name='{name}'][value='{value}']")
            return
        await self._tab_to(f"input[name='{name}']")
        await self.page.keyboard.press("Space")
        for _ in range(40):
            if await self.page.is_checked(f"input[name='{name}'][value='{value}']"):
                return
            await self.page.keyboard.press("ArrowDown")
        raise AssertionError(f"{name}={value} could not be chosen with the arrow keys")

    async def select(self, name: str, value: str) -> None:
        if not self.keyboard:
            await self.page.select_option(f"#{name}", value)
            return
        await self._tab_to(f"#{name}")
        for _ in range(60):
            if await self.page.input_value(f"#{name}") == value:
                return
            await self.page.keyboard.press("ArrowDown")
        raise AssertionError(f"{name}={value} could not be chosen with the arrow keys")

    async def type(self, name: str, text: str) -> None:
        if self.keyboard:
            await self._tab_to(f"#{name}")
            await self.page.keyboard.type(text)
        else:
            await self.page.fill(f"#{name}", text)

    async def locate(self) -> None:
        """Ask lokasi.js for the phone's position, where the browser runs it."""
        button = self.page.locator("[data-location-button]")
        if not await button.is_visible():
            return
        if self.keyboard:
            await self._tab_to("[data-location-button]")
            await self.page.keyboard.press("Enter")
        else:
            await button.click()
        await self.page.locator("[data-location-added]").wait_for(state="visible")

    async def attach(self, name: str, file: dict[str, Any]) -> None:
        if self.keyboard:
            await self._tab_to(f"#{name}")
            await (await self._file_chooser()).set_files(file)
        else:
            await self.page.set_input_files(f"#{name}", file)

    async def _file_chooser(self) -> Any:
        """Space on the focused file field opens the chooser. Headless Chromium now and
        then drops the first request for one when the machine is busy; Space again."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        for _ in range(3):
            try:
                async with self.page.expect_file_chooser(timeout=10_000) as chooser:
                    await self.page.keyboard.press("Space")
                return await chooser.value
            except PlaywrightTimeout:
                continue
        raise AssertionError("Space on the file field opened no file chooser")


def _answers(title: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Each question page of the journey and what the citizen does there."""
    go_on = ("press", "Lanjutkan")
    story = "Lubang besar di jalan desa membahayakan pengendara motor."
    return [
        ("jenis", [("choose", "jenis", "pengaduan"), go_on]),
        ("kategori", [("choose", "kategori", "jalan_rusak"), go_on]),
        ("kecamatan", [("select", "kecamatan", KECAMATAN), go_on]),
        ("desa", [("select", "desa", DESA), ("locate",), go_on]),
        ("isi", [("type", "judul", title), ("type", "uraian", story), go_on]),
        ("foto", [("attach", "foto", JPEG), ("press", "Unggah foto")]),
        ("foto-terunggah", [go_on]),
        ("privasi", [("choose", "anonim", "tidak"), ("choose", "rahasia", "tidak"), go_on]),
        ("pelapor", [("type", "nik", NIK), ("type", "telepon", "0812 3456 7890"), go_on]),
    ]


async def lapor(page: Any, audit: Audit, stack: Stack, *, keyboard: bool = False, title: str) -> str:
    """The whole Lapor journey with one photo; the tracking code it ends with."""
    hands = Hands(page, keyboard)
    await page.goto(stack.portal + "/")
    await audit.page(page, "beranda")
    await hands.follow("Buat laporan")
    for name, actions in _answers(title):
        await audit.page(page, name)
        if name == "foto-terunggah":  # the complaints service took it
            assert "Foto 1 terunggah" in await page.inner_text("main")
        for verb, *args in actions:
            await getattr(hands, verb)(*args)
    await audit.page(page, "periksa")
    summary = await page.inner_text(".summary-list")
    assert title in summary and "Harjobinangun, Grabag" in summary and "1 foto" in summary
    await hands.press("Kirim laporan")
    await audit.page(page, "selesai")
    assert await page.inner_text("h1") == "Laporan terkirim"
    assert await page.locator(".qr-image svg").count() == 1
    return (await page.inner_text("#kode")).strip()


def label_of(name: str, viewport: dict[str, int]) -> str:
    return f"{name}-{'phone' if viewport is PHONE else 'desktop'}"


async def assert_filed(stack: Stack, code: str, title: str, *, located: bool) -> None:
    """The complaint is really in the complaints service, its photo without EXIF, with
    the phone's position when the browser ran lokasi.js."""
    async with httpx.AsyncClient(base_url=stack.complaints, timeout=30) as client:
        found = await client.get(f"/complaints/{code}")
    assert found.status_code == 200
    assert found.json()["title"] == title and found.json()["desa_code"] == DESA
    case, photo = await officer_view(stack, code)
    assert without_exif(photo)
    position = {"lat": POSITION["latitude"], "lon": POSITION["longitude"]}
    assert case["location"] == (position if located else None)


@pytest.mark.parametrize(
    ("viewport", "javascript", "keyboard"),
    [(PHONE, True, False), (DESKTOP, True, False), (PHONE, False, False), (DESKTOP, True, True)],
    ids=["phone", "desktop", "phone-without-javascript", "desktop-keyboard-only"],
)
async def test_lapor_journey_ends_with_a_tracking_code_and_the_complaint_filed(
    browser: Any, stack: Stack, viewport: dict[str, int], javascript: bool, keyboard: bool, request: Any
) -> None:
    label = "lapor-" + request.node.callspec.id
    async with browsing(browser, stack, viewport, label, javascript=javascript) as (page, audit):
        title = f"Jalan berlubang ({request.node.callspec.id})"
        code = await lapor(page, audit, stack, keyboard=keyboard, title=title)
        await assert_filed(stack, code, title, located=javascript)
        # Filed: the portal keeps nothing of it (its draft is gone).
        drafts = "SELECT count(*) FROM drafts WHERE answers->>'judul' = $1"
        assert await db_fetchval(stack.portal_database, drafts, title) == 0

        # Lacak, from the confirmation: the history in plain words.
        await page.get_by_role("link", name="Lihat perkembangan laporan").click()
        await audit.page(page, "lacak")
        assert await page.get_attribute("#status", "data-status") == "submitted"
        assert "Laporan Anda diterima" in await page.inner_text("#riwayat")
        audit.check()
        assert len(audit.pages) == 13
        # The code, the citizen's key to the case, stays out of the portal's log.
        assert code not in service_log(stack.processes["portal"])


@VIEWPORTS
async def test_lacak_shows_the_history_in_plain_words(
    browser: Any, stack: Stack, viewport: dict[str, int]
) -> None:
    async with browsing(browser, stack, viewport, label_of("lacak", viewport)) as (page, audit):
        code = await lapor(page, audit, stack, title="Saluran air tersumbat")
        # An officer checks it: the citizen sees a second line, in words.
        async with httpx.AsyncClient(base_url=stack.complaints, timeout=30) as client:
            verified = await client.post(
                f"/officer/complaints/{code}/verify", headers=officer_headers("coordinator"), json={}
            )
            assert verified.status_code == 200, verified.text
        await page.goto(stack.portal + "/lacak")
        await audit.page(page, "lacak-kosong")
        await page.fill("#kode", code.lower())
        await page.get_by_role("button", name="Lacak").click()
        await audit.page(page, "lacak-hasil")
        assert await page.inner_text("#status") == "Sudah diperiksa petugas"
        lines = await page.locator("#riwayat .timeline-what").all_inner_texts()
        assert lines == ["Laporan Anda diterima", "Petugas memeriksa laporan Anda"]

        # A well-formed code nobody holds.
        await page.fill("#kode", "ADU-2612-ABCD-EFGH-JKMNP")
        await page.get_by_role("button", name="Lacak").click()
        await audit.page(page, "lacak-tidak-ada")
        assert "Tidak ada layanan dengan kode ini" in await page.inner_text("#kode-error")

        # A permit's code is asked of the permits service.
        await page.fill("#kode", stack.permit_code)
        await page.get_by_role("button", name="Lacak").click()
        await audit.page(page, "lacak-izin")
        assert await page.get_attribute("#status", "data-status") == "submitted"
        assert await page.locator("#riwayat .timeline-what").all_inner_texts() == ["Permohonan Anda diterima"]

        # English, through the switch (a link: no JavaScript needed).
        await page.get_by_role("link", name="Ganti bahasa ke English").click()
        await audit.page(page, "lacak-english")
        assert await page.locator("#riwayat .timeline-what").all_inner_texts() == [
            "Your application was received"
        ]
        await page.get_by_role("link", name="Switch the language to Bahasa Indonesia").click()
        audit.check()


@VIEWPORTS
async def test_an_empty_page_shows_the_error_summary_linking_to_the_field(
    browser: Any, stack: Stack, viewport: dict[str, int]
) -> None:
    async with browsing(browser, stack, viewport, label_of("kesalahan", viewport)) as (page, audit):
        await page.goto(stack.portal + "/lapor/jenis")
        await page.get_by_role("button", name="Lanjutkan").click()
        await audit.page(page, "jenis-kosong")
        summary = page.locator(".error-summary")
        assert await summary.is_visible()
        link = summary.get_by_role("link", name="Pilih jenis laporan")
        assert await link.get_attribute("href") == "#jenis"
        assert await words(page, "#jenis-error") == "Kesalahan: Pilih jenis laporan"
        assert (await page.title()).startswith("Kesalahan:")
        await link.click()
        assert await page.evaluate("document.activeElement.id") == "jenis"

        # Two fields wrong at once: both in the summary, in the page's order.
        await hands_through(page, stack)
        await page.get_by_role("button", name="Lanjutkan").click()
        await audit.page(page, "isi-kosong")
        assert await summary.get_by_role("link").all_inner_texts() == [
            "Tulis judul laporan",
            "Ceritakan apa yang terjadi",
        ]
        assert await words(page, "#uraian-error") == "Kesalahan: Ceritakan apa yang terjadi"
        audit.check()


async def words(page: Any, selector: str) -> str:
    """An element's text as a screen reader reads it out (hidden prefixes included)."""
    return " ".join((await page.text_content(selector) or "").split())


async def hands_through(page: Any, stack: Stack) -> None:
    """From the first page, answer those before the title and description (by pointer)."""
    await page.goto(stack.portal + "/lapor/jenis")
    await page.check("input[name='jenis'][value='aspirasi']")
    await page.get_by_role("button", name="Lanjutkan").click()
    await page.check("input[name='kategori'][value='jalan_rusak']")
    await page.get_by_role("button", name="Lanjutkan").click()
    await page.select_option("#kecamatan", KECAMATAN)
    await page.get_by_role("button", name="Lanjutkan").click()
    await page.select_option("#desa", DESA)
    await page.get_by_role("button", name="Lanjutkan").click()


async def test_ubah_changes_one_answer_and_comes_back_to_the_check_page(browser: Any, stack: Stack) -> None:
    async with browsing(browser, stack, PHONE, "ubah-phone") as (page, audit):
        await hands_through(page, stack)
        await page.fill("#judul", "Sampah menumpuk")
        await page.fill("#uraian", "Sampah menumpuk di tepi jalan desa sejak seminggu.")
        await page.get_by_role("button", name="Lanjutkan").click()
        await page.get_by_role("button", name="Lanjutkan").click()  # no photo
        await page.check("input[name='anonim'][value='ya']")  # anonymous: no reporter page
        await page.check("input[name='rahasia'][value='tidak']")
        await page.get_by_role("button", name="Lanjutkan").click()
        await audit.page(page, "periksa-anonim")
        assert "NIK" not in await page.inner_text(".summary-list")

        # Change the location: the kecamatan, then its desa, then back to the check page.
        await page.get_by_role("link", name="Ubah lokasi").click()
        await audit.page(page, "ubah-kecamatan")
        assert await page.get_attribute(".back-link", "href") == "/lapor/periksa"
        await page.get_by_role("button", name="Lanjutkan").click()
        await audit.page(page, "ubah-desa")
        await page.select_option("#desa", OTHER_DESA)
        await page.get_by_role("button", name="Lanjutkan").click()
        await audit.page(page, "periksa-diubah")
        audit.check()
        assert page.url.endswith("/lapor/periksa")
        assert "Patutrejo, Grabag" in await page.inner_text(".summary-list")


@VIEWPORTS
async def test_a_pdf_named_as_a_photo_is_refused_next_to_the_field_and_nothing_is_kept(
    browser: Any, stack: Stack, viewport: dict[str, int]
) -> None:
    async with browsing(browser, stack, viewport, label_of("foto-ditolak", viewport)) as (page, audit):
        await hands_through(page, stack)
        await page.fill("#judul", "Pohon tumbang")
        await page.fill("#uraian", "Pohon tumbang menutup jalan kabupaten.")
        await page.get_by_role("button", name="Lanjutkan").click()
        before = await db_fetchval(stack.complaints_database, "SELECT count(*) FROM attachment")
        await page.set_input_files("#foto", {"name": "foto.jpg", "mimeType": "image/jpeg", "buffer": pdf()})
        await page.get_by_role("button", name="Unggah foto").click()
        await audit.page(page, "foto-pdf")
        assert "JPEG atau PNG" in await page.inner_text("#foto-error")
        assert "JPEG atau PNG" in await page.inner_text(".error-summary")
        assert await db_fetchval(stack.complaints_database, "SELECT count(*) FROM attachment") == before
        audit.check()


async def test_every_page_is_sent_with_the_security_headers_and_a_form_needs_its_token(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.portal, timeout=30) as client:
        first = await client.get("/lapor/jenis")
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # development
        assert 'name="csrf"' in first.text
        for path in (
            "/",
            "/lapor/jenis",
            f"/lacak?kode={stack.permit_code}",
            "/static/portal.css",
            "/nowhere",
        ):
            response = await client.get(path)
            for name, parts in SECURITY_HEADERS.items():
                for part in parts:
                    assert part in response.headers.get(name, ""), (path, name)
            assert "'unsafe-inline'" not in response.headers["content-security-policy"]

        refused = await client.post("/lapor/jenis", data={"jenis": "pengaduan"})
        assert refused.status_code == 403 and "kedaluwarsa" in refused.text
        forged = await client.post("/lapor/jenis", data={"jenis": "pengaduan", "csrf": "0" * 64})
        assert forged.status_code == 403
        # Another browser's token does not fit this session.
        async with httpx.AsyncClient(base_url=stack.portal, timeout=30) as other:
            theirs = (await other.get("/lapor/jenis")).text.split('name="csrf" value="')[1].split('"')[0]
        assert (
            await client.post("/lapor/jenis", data={"jenis": "pengaduan", "csrf": theirs})
        ).status_code == 403
        mine = first.text.split('name="csrf" value="')[1].split('"')[0]
        accepted = await client.post("/lapor/jenis", data={"jenis": "pengaduan", "csrf": mine})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/lapor/kategori"


@VIEWPORTS
async def test_with_complaints_stopped_lapor_says_so_and_lacak_of_a_permit_still_works(
    browser: Any, stack: Stack, viewport: dict[str, int]
) -> None:
    """Runs last in this module: it stops the module's complaints service."""
    stack.stop("complaints")
    async with browsing(browser, stack, viewport, label_of("layanan-mati", viewport)) as (page, audit):
        await page.goto(stack.portal + "/lapor/jenis")
        await page.check("input[name='jenis'][value='pengaduan']")
        async with page.expect_navigation() as navigation:
            await page.get_by_role("button", name="Lanjutkan").click()
        response = await navigation.value
        assert response.status == 503
        await audit.page(page, "pengaduan-mati")
        text = await page.inner_text("main")
        assert "Layanan pengaduan sedang tidak dapat dihubungi, coba lagi beberapa saat lagi." in text
        assert "Traceback" not in await page.content()

        response = await page.goto(stack.portal + f"/lacak?kode={stack.permit_code}")
        assert response.status == 200
        await audit.page(page, "izin-tetap-jalan")
        assert await page.get_attribute("#status", "data-status") == "submitted"

        # Health was never started here: a booking code gets its own service's words.
        response = await page.goto(stack.portal + "/lacak?kode=KES-2612-ABCD-EFGH-JKMNP")
        assert response.status == 503
        await audit.page(page, "kesehatan-mati")
        assert "Layanan kesehatan sedang tidak dapat dihubungi" in await page.inner_text("main")
        audit.check()
