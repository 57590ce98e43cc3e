"""The portal with the services a verified citizen reaches: the notification service
(one-time codes through the suite's fake gateway and SMTP sink, and the sessions it
signs), health, complaints and the integration view, each its own process on the
suite's broker and PostgreSQL, as `make run` starts them.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.runtime.embedded import free_port
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.browser.portal_support import NOTIFICATIONS_LIMITS, Audit, OneTimeCodes, service_processes
from tests.faults.support import DOMAIN_TOPICS, notifications_process
from tests.harness import new_database, new_group, officer_headers, wait_for

SERVICES = ("notifications", "health", "complaints", "integration", "portal")
# With `permits=True`, the permits service too (every journey the portal offers).
WITH_PERMITS = (*SERVICES, "permits")
# RSUD-D01 is the only internist on Tuesdays (weekday 1): with no places there, every
# Tuesday is full.
FULL_DOCTOR, FULL_WEEKDAY = "RSUD-D01", 1


@dataclass
class CitizenStack(OneTimeCodes):
    portal: str
    health: str
    notifications: str
    notifications_database: str
    sink: SmtpSink
    gateway: FakeGateway
    complaints: str
    permits: str = ""
    # Each service's address, database and process, by name (to stop one, read one).
    urls: dict[str, str] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def stop(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

    async def health_api(self, method: str, path: str, **request: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.health, timeout=30) as client:
            return await client.request(method, path, **request)


@asynccontextmanager
async def citizen_stack(
    infra: Infrastructure, sink: SmtpSink, gateway: FakeGateway, *, permits: bool = False
) -> AsyncIterator[CitizenStack]:
    services = WITH_PERMITS if permits else SERVICES
    ports = {name: free_port() for name in services}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    group = await new_group(infra, "notifications-portal", DOMAIN_TOPICS.values())
    view_group = await new_group(infra, "integration-portal", DOMAIN_TOPICS.values())
    databases = {name: await new_database(infra) for name in services}
    # Every service verifies sessions with the keys this notification service publishes.
    issuer = {"SINERGI_CITIZEN_ISSUER": urls["notifications"]}
    notifications_env = notifications_process(
        infra, databases["notifications"], group, sink, gateway, key_holders=urls
    ).env
    environments = {
        "notifications": {
            **notifications_env,
            **issuer,
            **NOTIFICATIONS_LIMITS,
        },
        "health": issuer,
        "complaints": issuer,
        "integration": {
            **issuer,
            "INTEGRATION_CONSUMER_GROUP": view_group,
            "INTEGRATION_GAUGE_SECONDS": "3600",
        },
        "portal": {
            **issuer,
            "PORTAL_HEALTH_URL": urls["health"],
            "PORTAL_COMPLAINTS_URL": urls["complaints"],
            "PORTAL_INTEGRATION_URL": urls["integration"],
            "PORTAL_NOTIFICATIONS_URL": urls["notifications"],
            **({"PORTAL_PERMITS_URL": urls["permits"]} if permits else {}),
            "PORTAL_UPSTREAM_TIMEOUT_SECONDS": "5",
        },
    }
    if permits:
        environments["permits"] = issuer
    specs = {name: (ports[name], databases[name], environments[name]) for name in services}
    async with service_processes(infra, specs) as processes:
        yield CitizenStack(
            urls["portal"],
            urls["health"],
            urls["notifications"],
            databases["notifications"],
            sink,
            gateway,
            urls["complaints"],
            urls.get("permits", ""),
            urls,
            databases,
            processes,
        )


async def fill_a_day(stack: CitizenStack, doctor: str, weekday: int) -> None:
    """The doctor's session on `weekday` with no places at all (an officer's change)."""
    schedule = {
        "start": "08:00",
        "end": "12:00",
        "minutes_per_patient": 8,
        "quota_jkn": 0,
        "quota_non_jkn": 0,
    }
    answer = await stack.health_api(
        "PUT", f"/doctors/{doctor}/schedules/{weekday}", json=schedule, headers=officer_headers("admin")
    )
    assert answer.status_code == 200, answer.text


async def go_on(page: Any, button: str = "Lanjutkan") -> None:
    await page.get_by_role("button", name=button, exact=True).click()


async def until_listed(page: Any, *codes: str) -> None:
    """Layanan saya reloaded until it lists every one of `codes` (the integration view
    has them once it has followed the bus)."""

    async def listed() -> bool:
        shown = await page.inner_text("#layanan")
        if all(code in shown for code in codes):
            return True
        await page.reload()
        return False

    await wait_for(listed, timeout=30, interval=1)


async def prove(
    page: Any, audit: Audit, stack: OneTimeCodes, contact: str, landing: str, *, nik: str | None = None
) -> None:
    """The sign-in pages from the contact page: the contact (and the NIK, where asked),
    then the code it received; `landing` names the page reached for the audit."""
    before = len(stack.codes(contact))
    await page.fill("#kontak", contact)
    if nik:
        await page.fill("#nik", nik)
    await go_on(page, "Kirim kode")
    await audit.page(page, "kode")
    await page.fill("#kode", await stack.new_code(contact, before))
    await go_on(page)
    await audit.page(page, landing)
