"""The dashboard in a real browser: headless Chromium (Debian's package, driven by
Playwright's Python API) against the integration view served by uvicorn on a free port,
with its consumer reading events published to the real broker. The live feed (live.js,
Server-Sent Events) updates the page under the strict Content-Security-Policy.

CI installs the browser with `apt-get install -y chromium`; this test fails (it does not
skip) when /usr/bin/chromium is missing. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer

from services.integration.app import IntegrationSettings, build
from shared.kit.settings import PlatformSettings
from shared.kit.web import PAGE_CSP
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from shared.schemas.registry import DOMAIN_TOPICS
from tests.harness import repo_root, send_event, wait_for
from tests.view_support import Complaint, new_code, view_settings

ARTIFACTS = repo_root() / "test-artifacts"
REF = "cr1_" + "c0ffee00" * 4
ROAD = '[data-indicator="road_transport_complaints_open"] .actual'


@dataclass
class Served:
    url: str
    topic: str


@pytest.fixture
async def served(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> AsyncIterator[Served]:
    settings = await view_settings(
        infra, platform, fresh_database, "br", port=free_port(), feed_poll_seconds=0.3
    )
    with serve_in_thread(settings) as url:
        yield Served(url, settings.topics[DOMAIN_TOPICS.index("complaints.events")])


@contextmanager
def serve_in_thread(settings: IntegrationSettings) -> Iterator[str]:
    """A real uvicorn server in a thread (its own event loop; signals stay with pytest)."""
    app = build(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False)
    )
    app.state.service.server = server  # live streams end when the server stops
    thread = threading.Thread(target=server.run, name="integration-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the integration view did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def publish_complaint(bootstrap: str, topic: str, code: str) -> None:
    complaint = Complaint(code, "jalan_rusak", "mobility", REF, desa="33.06.06.1007")
    async with AIOKafkaProducer(bootstrap_servers=bootstrap) as producer:
        await send_event(producer, topic, complaint.filed(datetime.now(UTC), "Jembatan retak di dekat pasar"))


async def test_dashboard_updates_live_and_tracking_page_works(
    browser: Any, served: Served, infra: Infrastructure
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        await wait_for(lambda: _ready(http), timeout=30)

    code = new_code("ADU")
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="id-ID")
    try:
        page = await context.new_page()
        refused: list[str] = []  # what the browser blocked under the page's CSP
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        answer = await page.goto(served.url + "/", wait_until="domcontentloaded")
        assert answer is not None and answer.headers["content-security-policy"] == PAGE_CSP
        assert await page.locator("h1").inner_text() == "Satu gambaran layanan kabupaten"
        await page.wait_for_selector("#live-status:not([hidden])", timeout=30_000)
        assert "langsung" in await page.locator("#live-status").inner_text()
        assert (await page.locator(ROAD).inner_text()).strip() == "0"
        await page.screenshot(path=str(ARTIFACTS / "dashboard-before.png"), full_page=True)

        # An event on the topic: the open road complaints indicator follows, live.
        await publish_complaint(infra.kafka_bootstrap, served.topic, code)
        # A selector, not a JavaScript predicate: the page's CSP forbids eval.
        await page.wait_for_selector(f"{ROAD}:text-is('1')", timeout=30_000)
        masked = code[:-6] + "••••" + code[-2:]
        await page.wait_for_selector(f"#feed-list li:has-text('{masked}')", timeout=30_000)
        await page.wait_for_selector(
            '[data-kecamatan="33.06.06"] .kopen strong:has-text("1")', timeout=30_000
        )
        content = await page.content()
        assert REF not in content and code not in content  # masked in the public feed
        assert not refused, refused  # live.js, its stream and its re-renders run under the CSP
        await page.screenshot(path=str(ARTIFACTS / "dashboard-after.png"), full_page=True)

        # The tracking page, through its form.
        await page.goto(served.url + "/lacak", wait_until="domcontentloaded")
        await page.fill("#kode", code.lower())
        await page.click("form.track-form button")
        await page.wait_for_selector("#track-status", timeout=30_000)
        assert await page.locator("#track-status").get_attribute("data-status") == "submitted"
        assert await page.locator("#track-status").inner_text() == "Diajukan"
        assert await page.locator("#riwayat .case-step").all_inner_texts() == ["Pengaduan Anda diterima"]
        await page.screenshot(path=str(ARTIFACTS / "tracking.png"), full_page=True)

        # English on request.
        await page.goto(served.url + "/?lang=en", wait_until="domcontentloaded")
        assert await page.locator("h1").inner_text() == "One picture of the regency's services"
    finally:
        await context.close()


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/ready")).status_code == 200
    except httpx.HTTPError:
        return False
