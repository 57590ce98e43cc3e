"""The portal and the services behind it, started as `make run` starts them (each its
own process, port and database, against the suite's broker and PostgreSQL), and what
every page a test reaches is checked for: axe-core, its weight, its origins, a
screenshot.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import ExifTags, Image

from services.permits.api import SubmitIn
from shared.kit.bodies import example_of
from shared.runtime.embedded import free_port
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.citizen_support import codes_received
from tests.faults.support import DOMAIN_TOPICS, notifications_process
from tests.harness import (
    new_database,
    new_group,
    officer_headers,
    repo_root,
    start_service_process,
    wait_for,
    wait_ready,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = repo_root() / "tests" / "browser" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = repo_root() / "test-artifacts" / "portal"
PAGE_BUDGET_BYTES = 150 * 1024
PHONE = {"width": 360, "height": 740}
# Where the test's phone says it is (Purworejo town), when the citizen allows it.
POSITION = {"latitude": -7.713, "longitude": 110.008}
DESKTOP = {"width": 1280, "height": 900}
# The notification service keeps its real limit on codes per contact (the portal shows
# its refusal); the limits per client address are lifted, since every request comes
# from the portal's one address here.
NOTIFICATIONS_LIMITS = {
    "SINERGI_RATE_LIMIT_FACTOR": "1",
    "SINERGI_RATE_LIMITS": json.dumps(
        {
            name: {"count": 100_000, "per_seconds": 3600}
            for name in (
                "notifications.codes.client",
                "notifications.sessions.client",
                "notifications.preferences",
            )
        }
    ),
}
SECURITY_HEADERS = {
    "content-security-policy": [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ],
    "referrer-policy": ["no-referrer"],
    "x-content-type-options": ["nosniff"],
}


class OneTimeCodes:
    """The one-time codes a stack's citizens receive (its notification service sends them
    through the suite's SMTP sink and fake gateway)."""

    sink: SmtpSink | None
    gateway: FakeGateway | None

    def codes(self, contact: str) -> list[str]:
        """The one-time codes `contact` received so far, oldest first."""
        assert self.sink is not None and self.gateway is not None, "the stack has no notification service"
        return codes_received(contact, self.sink, self.gateway)

    async def new_code(self, contact: str, before: int) -> str:
        """Wait for a code beyond the `before` ones `contact` had already received."""

        def arrived() -> str | None:
            found = self.codes(contact)
            return found[-1] if len(found) > before else None

        return await wait_for(arrived, timeout=30)


@dataclass
class Stack(OneTimeCodes):
    portal: str
    complaints: str
    permits: str
    complaints_database: str
    portal_database: str
    processes: dict[str, subprocess.Popen[bytes]]
    permit_code: str = ""
    permits_database: str = ""
    sink: SmtpSink | None = None
    gateway: FakeGateway | None = None

    def stop(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@asynccontextmanager
async def portal_stack(
    infra: Infrastructure,
    portal_settings: dict[str, str] | None = None,
    *,
    citizens: tuple[SmtpSink, FakeGateway] | None = None,
) -> AsyncIterator[Stack]:
    """Complaints, permits and the portal (with `portal_settings` as PORTAL_* variables);
    with `citizens`, also the notification service that lets citizens sign in with a
    one-time code (sent through that sink and gateway). Health is not started, so the
    portal's health address answers nothing."""
    names = ("complaints", "permits", "portal", *(("notifications",) if citizens else ()))
    ports = {name: free_port() for name in (*names, "health")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {name: await new_database(infra) for name in names}
    environments: dict[str, dict[str, str]] = {name: {} for name in names}
    environments["portal"] = {
        "PORTAL_COMPLAINTS_URL": urls["complaints"],
        "PORTAL_PERMITS_URL": urls["permits"],
        "PORTAL_HEALTH_URL": urls["health"],
        "PORTAL_UPSTREAM_TIMEOUT_SECONDS": "3",
        **(portal_settings or {}),
    }
    if citizens:
        group = await new_group(infra, "notifications-portal", DOMAIN_TOPICS.values())
        producers = {name: urls[name] for name in ("complaints", "permits")}
        notifications = notifications_process(
            infra, databases["notifications"], group, *citizens, key_holders=producers
        ).env
        environments["notifications"] = {**notifications, **NOTIFICATIONS_LIMITS}
        environments["portal"]["PORTAL_NOTIFICATIONS_URL"] = urls["notifications"]
        # Every service verifies sessions with the keys this notification service publishes.
        for env in environments.values():
            env["SINERGI_CITIZEN_ISSUER"] = urls["notifications"]
    specs = {name: (ports[name], databases[name], environments[name] or None) for name in names}
    async with service_processes(infra, specs) as processes:
        stack = Stack(
            urls["portal"],
            urls["complaints"],
            urls["permits"],
            databases["complaints"],
            databases["portal"],
            processes,
            permits_database=databases["permits"],
            sink=citizens[0] if citizens else None,
            gateway=citizens[1] if citizens else None,
        )
        async with httpx.AsyncClient(base_url=stack.permits, timeout=30) as permits:
            filed = await permits.post("/applications", json=example_of(SubmitIn))
            assert filed.status_code == 201, filed.text
            stack.permit_code = filed.json()["tracking_code"]
        yield stack


@asynccontextmanager
async def service_processes(
    infra: Infrastructure, specs: dict[str, tuple[int, str, dict[str, str] | None]]
) -> AsyncIterator[dict[str, subprocess.Popen[bytes]]]:
    """Services as processes, by name: (port, database, environment) each; all ready
    when entered, all stopped when left."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (port, database, env) in specs.items():
            processes[name] = start_service_process(
                name, bootstrap=infra.kafka_bootstrap, database_url=database, port=port, env=env
            )
        for name, process in processes.items():
            await wait_ready(f"http://127.0.0.1:{specs[name][0]}", process, name=name)
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def officer_view(stack: Stack, code: str) -> tuple[dict[str, Any], Image.Image]:
    """The complaint as an officer sees it (its position included) and its one photo as
    the complaints service keeps it."""
    coordinator = officer_headers("coordinator", subject="portal-test")
    async with httpx.AsyncClient(base_url=stack.complaints, timeout=30, headers=coordinator) as client:
        case = (await client.get(f"/officer/complaints/{code}")).json()
        [photo] = case["photos"]
        downloaded = await client.get(photo["url"])
        assert downloaded.status_code == 200
        return case, Image.open(io.BytesIO(downloaded.content))


def without_exif(image: Image.Image) -> bool:
    exif = image.getexif()
    return dict(exif) == {} and exif.get_ifd(ExifTags.IFD.GPSInfo) == {}


@dataclass
class Audit:
    """Watches one browser page: every request it makes, and at each page reached its
    weight since the previous one, its origins, axe-core's findings and a screenshot."""

    origin: str
    label: str
    run_axe: bool = True
    pages: list[str] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)
    violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _pending: list[Any] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("requestfinished", lambda request: self._pending.append(request))
        page.on("request", lambda request: self._foreign(request.url))

    def _foreign(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("data", "about", "blob"):
            return
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(url)

    async def page(self, page: Any, name: str) -> None:
        await page.wait_for_load_state("load")
        weight = 0
        for request in self._pending:
            sizes = await request.sizes()
            weight += sizes["responseBodySize"] + sizes["responseHeadersSize"]
            weight += sizes["requestBodySize"] + sizes["requestHeadersSize"]
        self._pending.clear()
        self.pages.append(name)
        self.weights[name] = weight
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(
            path=str(ARTIFACTS / f"{self.label}-{len(self.pages):02d}-{name}.png"), full_page=True
        )
        if self.run_axe:
            await page.evaluate(AXE.read_text() + "\n;undefined")
            found = await page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
            )
            serious = [v for v in found if v["impact"] in ("serious", "critical")]
            if serious:
                self.violations[name] = serious

    def leave_site(self, other_origin: str) -> None:
        """The browser went through another site's pages (the identity provider's sign-in
        or sign-out): its requests are not the portal's, and no portal page's weight."""
        self._pending.clear()
        self.foreign = [url for url in self.foreign if not url.startswith(other_origin)]

    def check(self) -> None:
        over = {name: weight for name, weight in self.weights.items() if weight > PAGE_BUDGET_BYTES}
        assert not over, f"pages over {PAGE_BUDGET_BYTES} bytes: {over}"
        assert not self.foreign, f"requests to another origin: {self.foreign}"
        assert not self.violations, "axe-core, serious or critical:\n" + json.dumps(self.violations, indent=1)


def screenshots() -> list[Path]:
    return sorted(ARTIFACTS.glob("*.png"))


@asynccontextmanager
async def audited(
    browser: Any, origin: str, label: str, viewport: dict[str, int]
) -> AsyncIterator[tuple[Any, Audit]]:
    """A fresh browser context (no cookies, Indonesian) on `viewport`, its page and the
    page's audit, checked once the context is closed."""
    context = await browser.new_context(viewport=viewport, locale="id-ID")
    page = await context.new_page()
    audit = Audit(origin, label)
    audit.attach(page)
    try:
        yield page, audit
    finally:
        await context.close()
    audit.check()


async def send_form(page: Any, button: str) -> int:
    """Press a form's button: the status of the answer to its POST (303 when the service
    took it and the page redirects), then wait for the page it leads to."""
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name=button, exact=True).click()
    response = await posted.value
    await page.wait_for_load_state("load")
    return int(response.status)
