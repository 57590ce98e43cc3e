"""The integration view's pages in a real browser: Debian's Chromium driven by
Playwright's Python API against the view served by uvicorn, its consumer reading events
of every domain published to the real broker, its read model in the real PostgreSQL.

Every page (dashboard, kecamatan, tracking with its answers and refusals, the officers'
page signed out, refused and signed in) on a phone and a desktop, in Indonesian and
English: axe-core finds no serious or critical violation, the answer carries the strict
Content-Security-Policy and the other security headers, the browser reports no CSP
violation, nothing comes from another origin and the page stays under 150 kB.
Screenshots go to test-artifacts/view/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.kit.settings import PlatformSettings
from shared.kit.web import PAGE_CSP
from shared.reference import all_desa
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from shared.schemas import Envelope
from shared.schemas.registry import DOMAIN_TOPICS
from tests.browser import portal_support
from tests.browser.portal_support import DESKTOP, PHONE, SECURITY_HEADERS, Audit
from tests.browser.test_dashboard import serve_in_thread
from tests.harness import new_database, officer_headers, repo_root, send_event, wait_for
from tests.view_support import (
    REF_1,
    REF_2,
    Complaint,
    appointment_events,
    new_code,
    notification_events,
    permit_events,
    view_settings,
    ward_event,
)

ARTIFACTS = repo_root() / "test-artifacts" / "view"
KECAMATAN = "33.06.06"
OTHER_OPEN = {"33.06.01": 4, "33.06.09": 3, "33.06.13": 1}
VIEWPORTS = [PHONE, DESKTOP]
FITS = "document.documentElement.scrollWidth <= window.innerWidth"
LANGUAGES = ["id", "en"]
# What the tracking page says happened to a complaint filed, verified and dispatched,
# whatever its notifications went through (created, sending, delivered for each step).
CASE_STEPS = {
    "id": {
        "complaint": [
            "Pengaduan Anda diterima",
            "Petugas memeriksa pengaduan Anda",
            "Pengaduan diteruskan ke OPD yang menangani",
        ],
        "permit": ["Permohonan Anda diterima", "Permohonan disetujui", "Izin terbit"],
        "booking": [
            "Antrean Anda terdaftar",
            "Anda mendaftar ulang di loket",
            "Anda dipanggil ke poliklinik",
        ],
    },
    "en": {
        "complaint": [
            "Your complaint was received",
            "An officer checked your complaint",
            "Your complaint was passed to the agency (OPD) that handles it",
        ],
        "permit": [
            "Your application was received",
            "Your application was approved",
            "Your permit was issued",
        ],
        "booking": [
            "Your appointment was booked",
            "You checked in at the counter",
            "You were called to the polyclinic",
        ],
    },
}


@dataclass
class Seeded:
    url: str
    complaint: str
    permit: str
    booking: str


def _events(complaint: Complaint, permit: str, booking: str) -> list[tuple[Envelope, str]]:
    """A complaint filed → verified → dispatched with an SMS delivered after each step,
    a permit issued, an appointment under way, a ward's beds, and open complaints in
    other kecamatan so that the map shows every shade: something on every part of the
    dashboard."""
    start = datetime.now(UTC) - timedelta(hours=2)
    steps = [
        complaint.filed(start, "Jembatan retak di dekat pasar"),
        complaint.verified(start + timedelta(minutes=20)),
        complaint.dispatched(start + timedelta(minutes=40), "DPUPR"),
    ]
    events = [(e, "complaints.events") for e in steps]
    for step in steps:
        sent = notification_events(complaint.code, REF_1, step.time + timedelta(seconds=5))
        events += [(e, "notifications.events") for e in sent]
    events += [(e, "permits.events") for e in permit_events(permit, REF_1, start)]
    events += [(e, "health.events") for e in appointment_events(booking, REF_1, start)]
    events.append((ward_event(12, start), "health.events"))
    # Open items per kecamatan: 4, 3, 2 (the complaint and the appointment above), 1.
    for kecamatan, count in OTHER_OPEN.items():
        desa = next(d.code for d in all_desa() if d.kecamatan_code == kecamatan)
        for i in range(count):
            other = Complaint(new_code("ADU"), "sampah", "environment", REF_2, desa=desa)
            events.append((other.filed(start + timedelta(minutes=i)), "complaints.events"))
    return events


@pytest.fixture(scope="module")
async def view(infra: Infrastructure, platform: PlatformSettings) -> AsyncIterator[Seeded]:
    database = await new_database(infra)
    settings = await view_settings(
        infra, platform, database, "pages", port=free_port(), feed_poll_seconds=0.3
    )
    topic_of = dict(zip(DOMAIN_TOPICS, settings.topics, strict=True))
    complaint = Complaint(new_code("ADU"), "jalan_rusak", "mobility", REF_1, desa="33.06.06.1007")
    seeded_codes = (complaint.code, new_code("IZN"), new_code("ANT"))
    events = _events(complaint, seeded_codes[1], seeded_codes[2])
    with serve_in_thread(settings) as url:
        async with AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap) as producer:
            for envelope, topic in events:
                await send_event(producer, topic_of[topic], envelope)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def applied() -> bool:
                try:
                    feed = await http.get("/api/feed", params={"limit": 200})
                except httpx.HTTPError:
                    return False
                return feed.status_code == 200 and len(feed.json()) == len(events)

            await wait_for(applied, timeout=60)
        yield Seeded(url, *seeded_codes)


@pytest.fixture(autouse=True)
def screenshots_of_the_view(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The portal's page audit, its screenshots kept in test-artifacts/view/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(portal_support, "ARTIFACTS", ARTIFACTS)
    yield


def assert_page_headers(headers: dict[str, str], where: str) -> None:
    for name, parts in SECURITY_HEADERS.items():
        for part in parts:
            assert part in headers.get(name, ""), (where, name, headers.get(name))
    assert headers["content-security-policy"] == PAGE_CSP, where
    assert "unsafe-inline" not in headers["content-security-policy"], where


@dataclass
class Visit:
    """One browser page on the view: it goes to a path in a language, checks the answer's
    status and headers, and audits what the browser shows."""

    page: Any
    audit: Audit
    seeded: Seeded
    lang: str

    def address(self, path: str) -> str:
        if self.lang == "id":
            return self.seeded.url + path
        return self.seeded.url + path + ("&" if "?" in path else "?") + "lang=en"

    async def go(self, path: str, name: str, status: int = 200) -> None:
        response = await self.page.goto(self.address(path))
        await self.checked(response, name, status)

    async def checked(self, response: Any, name: str, status: int) -> None:
        assert response.status == status, (name, response.status)
        assert_page_headers(await response.all_headers(), name)
        await self.audit.page(self.page, name)
        # Usable at 360 px: wide tables scroll in their own region, never the page.
        assert await self.page.evaluate(FITS), f"{name} is wider than the screen"

    async def sign_in(self, token: str, name: str, status: int) -> None:
        """The officers' page's form, posted as an officer does."""
        await self.page.fill("#token", token)
        await self.page.fill("#ref", REF_1)
        async with self.page.expect_navigation() as navigation:
            await self.page.click("form.officer-form button")
        await self.checked(await navigation.value, name, status)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["phone", "desktop"])
async def test_every_page_is_accessible_light_local_and_sent_with_a_strict_csp(
    browser: Any, view: Seeded, viewport: dict[str, int], lang: str
) -> None:
    label = f"{'phone' if viewport is PHONE else 'desktop'}-{lang}"
    context = await browser.new_context(viewport=viewport, locale="id-ID")
    page = await context.new_page()
    audit = Audit(view.url, label)
    audit.attach(page)
    reports: list[str] = []
    page.on("console", lambda m: reports.append(m.text) if "Content Security Policy" in m.text else None)
    visit = Visit(page, audit, view, lang)
    try:
        await visit.go("/", "dasbor")
        await page.wait_for_selector("#live-status:not([hidden])", timeout=30_000)
        await visit.go(f"/wilayah/{KECAMATAN}", "wilayah")
        await visit.go("/wilayah/99.99", "wilayah-tidak-dikenal", 404)
        await visit.go("/lacak", "lacak")
        await visit.go(f"/lacak?kode={view.complaint}", "lacak-pengaduan")
        await visit.go(f"/lacak?kode={view.permit}", "lacak-izin")
        await visit.go(f"/lacak?kode={view.booking}", "lacak-antrean")
        await visit.go("/lacak?kode=%21%21", "lacak-tidak-sah", 422)
        await visit.go("/lacak?kode=ADU-0000-XXXXXX", "lacak-tidak-ada", 404)
        await visit.go("/petugas", "petugas")
        await visit.sign_in("bukan-token", "petugas-ditolak", 401)
        token = officer_headers("coordinator")["Authorization"].split()[1]
        await visit.sign_in(token, "petugas-linimasa", 200)
        assert await page.locator("article.timeline table.items tbody tr").count() == 3
        assert not reports, reports
        audit.check()
    finally:
        await context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_tracking_page_shows_the_steps_of_the_case_not_its_notifications(
    browser: Any, view: Seeded, lang: str
) -> None:
    """The complaint went filed → verified → dispatched, and after each step an SMS went
    through created, sending and delivered: the citizen reads the three steps."""
    async with httpx.AsyncClient(base_url=view.url, timeout=30) as http:
        timeline = await http.get(
            f"/api/officer/citizens/{REF_1}/timeline", headers=officer_headers("coordinator")
        )
    sent = [e for e in timeline.json()["timeline"] if e["domain"] == "notifications"]
    assert [e["code"] for e in sent] == [view.complaint] * 9  # the view has every state of them
    context = await browser.new_context(viewport=PHONE, locale="id-ID")
    page = await context.new_page()
    visit = Visit(page, Audit(view.url, f"riwayat-{lang}"), view, lang)
    try:
        for case in ("complaint", "permit", "booking"):
            await visit.go(f"/lacak?kode={getattr(view, case)}", f"riwayat-{case}")
            lines = await page.locator("#riwayat > li").all_inner_texts()
            assert await page.locator("#riwayat .case-step").all_inner_texts() == CASE_STEPS[lang][case]
            assert len(lines) == len(CASE_STEPS[lang][case]), lines
            assert not [line for line in lines if "otif" in line], lines  # Notifikasi / Notification
        visit.audit.check()
    finally:
        await context.close()
