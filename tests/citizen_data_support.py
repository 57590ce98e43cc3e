"""A citizen with something in every service, and the portal's forms driven over HTTP
(its cookie, its CSRF token), for the tests of a citizen's data export
(tests/integration/test_citizen_data_export.py, tests/browser/test_portal_data_export.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from services.permits.api import SubmitIn
from shared.kit.bodies import example_of
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.browser.citizen_portal_support import CitizenStack, citizen_stack
from tests.citizen_support import open_session
from tests.harness import officer_headers, wait_for
from tests.integration.test_complaints_service import complaint_body
from tests.integration.test_health_service import booking

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FACILITY, POLYCLINIC = "RSUD-TJITRO", "INT"
DOMAINS = ("complaints", "permits", "health", "notifications", "integration")


@dataclass(frozen=True)
class Held:
    """What a citizen (`nik`, proving `phone`) started: a code in each domain service."""

    nik: str
    phone: str  # as the services keep it (+62…)
    complaint: str
    application: str
    booking: str

    @property
    def codes(self) -> set[str]:
        return {self.complaint, self.application, self.booking}


async def _book(stack: CitizenStack, nik: str, phone: str) -> str:
    """A booking of the seeded polyclinic on its first day with places, with a session of
    `phone` proved through the notification service (the code from the fake gateway)."""
    async with httpx.AsyncClient(base_url=stack.notifications, timeout=30) as api:
        session = await open_session(api, phone, stack.sink, stack.gateway)
    for days in range(1, 15):
        day = date.today() + timedelta(days=days)
        body = booking(day, POLYCLINIC, nik=nik, phone=phone, facility=FACILITY)
        answer = await stack.health_api("POST", "/appointments", json=body, headers=session)
        if answer.status_code == 201:
            return str(answer.json()["booking_code"])
    raise AssertionError(f"no day to book: {answer.text}")


async def citizen_with_everything(stack: CitizenStack, nik: str, phone: str) -> Held:
    """A complaint, a permit application and a booking by `nik` with `phone`, once the
    complaint's message to the phone is delivered and the integration view lists all
    three."""
    async with httpx.AsyncClient(base_url=stack.complaints, timeout=30) as complaints:
        filed = await complaints.post(
            "/complaints", json=complaint_body(reporter={"nik": nik, "phone": phone})
        )
        assert filed.status_code == 201, filed.text
    application = example_of(SubmitIn)
    application["applicant"] = {**application["applicant"], "nik": nik, "phone": phone}
    async with httpx.AsyncClient(base_url=stack.permits, timeout=30) as permits:
        submitted = await permits.post("/applications", json=application)
        assert submitted.status_code == 201, submitted.text
    held = Held(
        nik,
        "+62" + phone.removeprefix("0"),
        filed.json()["tracking_code"],
        submitted.json()["tracking_code"],
        await _book(stack, nik, phone),
    )

    async def delivered() -> bool:
        async with httpx.AsyncClient(base_url=stack.notifications, timeout=30) as api:
            found = await api.get(
                "/notifications", params={"tracking_code": held.complaint}, headers=officer_headers()
            )
        return any(n["status"] == "delivered" for n in found.json()["items"])

    async def listed() -> bool:
        async with httpx.AsyncClient(base_url=stack.urls["integration"], timeout=30) as view:
            return all([(await view.get(f"/api/track/{code}")).status_code == 200 for code in held.codes])

    await wait_for(delivered, timeout=60)
    await wait_for(listed, timeout=60)
    return held


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, f"no form token on {path}"
    return found.group(1)


async def citizen_signed_in(stack: CitizenStack, client: httpx.AsyncClient, contact: str, nik: str) -> None:
    """Layanan saya's sign-in over HTTP: the contact and NIK, then the code it received."""
    assert (await client.get("/masuk", params={"untuk": "layanan"})).status_code == 303
    before = len(stack.codes(contact))
    token = await csrf_of(client, "/masuk/kontak")
    sent = await client.post("/masuk/kontak", data={"csrf": token, "kontak": contact, "nik": nik})
    assert sent.status_code == 303, sent.text
    code = await stack.new_code(contact, before)
    proved = await client.post(
        "/masuk/kode", data={"csrf": await csrf_of(client, "/masuk/kode"), "kode": code}
    )
    assert proved.status_code == 303 and proved.headers["location"] == "/layanan", proved.text


async def officer_signed_in(client: httpx.AsyncClient, role: str = "admin") -> None:
    """The workspace's development sign-in over HTTP."""
    token = await csrf_of(client, "/petugas/masuk")
    answer = await client.post(
        "/petugas/masuk", data={"csrf": token, "nama": "Dina Pelindung Data", "peran": role}
    )
    assert answer.status_code == 303, answer.text


def export_fixtures(nik: str, phone: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A test module's `stack` (every service and the portal, each its own process) and
    `held` (the citizen `nik` with `phone`, with something in every service) fixtures:
    `stack, held = export_fixtures(NIK, PHONE)`."""

    @pytest.fixture(scope="module")
    async def stack(
        infra: Infrastructure, smtp_sink: SmtpSink, fake_gateway: FakeGateway
    ) -> AsyncIterator[CitizenStack]:
        async with citizen_stack(infra, smtp_sink, fake_gateway, permits=True) as started:
            yield started

    return stack, held_fixture(nik, phone)


def held_fixture(nik: str, phone: str) -> Callable[..., Any]:
    """A test module's `held` fixture: the citizen `nik` with `phone`, with something in
    every service of the module's `stack`."""

    @pytest.fixture(scope="module")
    async def held(stack: CitizenStack) -> Held:
        return await citizen_with_everything(stack, nik, phone)

    return held
