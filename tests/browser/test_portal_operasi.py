"""The operations pages of the officers' workspace in a real browser, with the
development sign-in: a notification officer lands on the failed deliveries, resends one
(it arrives at the gateway) and is told plainly when a notification is no longer failed,
and is "not authorised" on the administrators' pages; an administrator finds the
operations section, replays a dead letter, then the rest of its reason, after the fix
(the integration view then shows the complaint), reads the outboxes and searches the
audit trail. Every page is audited (axe-core, weight, origins, a screenshot in
test-artifacts/portal/).

One stack for the file: complaints, notifications, the integration view and the portal,
each its own process; permits and health are not started, so their rows say so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.kit.codes import WIB
from shared.runtime.embedded import free_port
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.browser.portal_support import DESKTOP, service_processes
from tests.browser.test_portal import words
from tests.browser.test_portal_petugas import officer, submit
from tests.faults.support import ALL_TOPICS, DOMAIN_TOPICS, integration_process, notifications_process
from tests.harness import db_execute, new_database, new_group, officer_headers, wait_for
from tests.integration.test_complaints_service import complaint_body
from tests.notifications_support import unique_phone

SERVICES = ("complaints", "notifications", "integration", "portal")
FILED = "id.sinergi.complaints.complaint.filed.v1"
# The integration view's database refuses filed complaints until the "fix" (as
# tests/faults/test_poison.py breaks a consumer): its events become dead letters.
REFUSE_FILED = (
    f"ALTER TABLE history ADD CONSTRAINT ops_refuse_filed CHECK (event_type <> '{FILED}') NOT VALID"
)
FIX = "ALTER TABLE history DROP CONSTRAINT ops_refuse_filed"


@dataclass
class Operations:
    urls: dict[str, str]  # each service's address, by name
    integration_db: str
    notifications_group: str
    integration_group: str
    gateway: FakeGateway
    bootstrap: str

    @property
    def portal(self) -> str:
        return self.urls["portal"]

    async def file(self, phone: str) -> str:
        body = complaint_body(reporter={"nik": "3306061708900041", "phone": phone})
        async with httpx.AsyncClient(base_url=self.urls["complaints"], timeout=30) as client:
            filed = await client.post("/complaints", json=body)
        assert filed.status_code == 201, filed.text
        return str(filed.json()["tracking_code"])

    async def failed(self, code: str) -> dict[str, Any] | None:
        """The notification of `code` once its delivery failed for good."""
        params = {"tracking_code": code, "status": "permanent-failure"}
        async with httpx.AsyncClient(base_url=self.urls["notifications"], timeout=30) as client:
            found = await client.get("/notifications", params=params, headers=officer_headers())
        items = found.json()["items"]
        return items[0] if items else None

    async def tracked(self, code: str) -> bool:
        async with httpx.AsyncClient(base_url=self.urls["integration"], timeout=30) as client:
            return (await client.get(f"/api/track/{code}")).status_code == 200

    async def letters(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for service in (self.urls["notifications"], self.urls["integration"]):
            async with httpx.AsyncClient(base_url=service, timeout=30) as client:
                found.update((await client.get("/admin/dead-letters", headers=officer_headers())).json())
        return found

    async def poison(self) -> None:
        """A record no consumer can read, on the complaints topic."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(DOMAIN_TOPICS["complaints"], b"{this is not json", key=b"poison")
        finally:
            await producer.stop()


@pytest.fixture(scope="module")
async def operations(
    infra: Infrastructure, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> AsyncIterator[Operations]:
    ports = {name: free_port() for name in (*SERVICES, "permits", "health")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {name: await new_database(infra) for name in SERVICES}
    n_group = await new_group(infra, "notifications-operasi", DOMAIN_TOPICS.values())
    i_group = await new_group(infra, "integration-operasi", ALL_TOPICS)
    environments = {
        "complaints": {},
        "notifications": notifications_process(
            infra,
            databases["notifications"],
            n_group,
            smtp_sink,
            fake_gateway,
            key_holders={"complaints": urls["complaints"]},
        ).env,
        "integration": integration_process(infra, databases["integration"], i_group).env,
        # Permits and health are not started: nothing answers at their addresses.
        "portal": {
            "PORTAL_PUBLIC_URL": urls["portal"],
            "PORTAL_UPSTREAM_TIMEOUT_SECONDS": "10",
            **{f"PORTAL_{name.upper()}_URL": url for name, url in urls.items() if name != "portal"},
        },
    }
    specs = {name: (ports[name], databases[name], environments[name]) for name in SERVICES}
    async with service_processes(infra, specs):
        yield Operations(
            urls, databases["integration"], n_group, i_group, fake_gateway, infra.kafka_bootstrap
        )


async def sign_in(page: Any, ops: Operations, name: str, role: str) -> None:
    await page.goto(f"{ops.portal}/petugas")
    assert urlsplit(page.url).path == "/petugas/masuk"
    await page.fill("#nama", name)
    await page.check(f"input[name='peran'][value='{role}']")
    await submit(page, "Masuk")


async def rows(page: Any, attribute: str) -> list[str]:
    return list(
        await page.locator(f"tr[data-{attribute}]").evaluate_all(
            f"rows => rows.map(r => r.getAttribute('data-{attribute}'))"
        )
    )


async def test_a_notification_officer_resends_failed_deliveries(browser: Any, operations: Operations) -> None:
    ops = operations
    first, second = unique_phone(), unique_phone()
    for phone in (first, second):
        ops.gateway.fail_always(400, to=phone)  # the gateway refuses them for good
    try:
        codes = [await ops.file(phone) for phone in (first, second)]
        failed = [await wait_for(lambda c=code: ops.failed(c), timeout=60) for code in codes]
    finally:
        ops.gateway.reset_failures()
    ids = [str(n["id"]) for n in failed]

    async with officer(browser, ops, "operasi-notifikasi", DESKTOP) as (page, audit):
        await sign_in(page, ops, "Nadia Notifikasi", "notification_officer")
        assert urlsplit(page.url).path == "/petugas/pengiriman"  # where a notification officer lands
        await audit.page(page, "pengiriman-gagal")
        assert (await page.inner_text("h1")).startswith("Pengiriman gagal")
        assert set(ids) <= set(await rows(page, "id"))
        listed = await words(page, "#daftar")
        assert "WhatsApp" in listed and "Gagal" in listed and "complaints/filed" in listed
        # The recipient is masked: no phone number in clear.
        assert first not in listed and first[3:] not in listed and second[3:] not in listed

        # Resent meanwhile by someone else: the stale row's button is told plainly.
        async with httpx.AsyncClient(base_url=ops.urls["notifications"], timeout=30) as client:
            again = await client.post(
                f"/notifications/{ids[1]}/resend", headers=officer_headers("notification_officer")
            )
            assert again.status_code == 202
        async with page.expect_response(lambda r: r.request.method == "POST") as posted:
            await page.locator(f"tr[data-id='{ids[1]}'] button").click()
        assert (await posted.value).status == 409
        await page.wait_for_load_state("load")
        await audit.page(page, "pengiriman-409")
        assert "tidak dapat dikirim ulang" in await words(page, "#ditolak")

        await page.locator(f"tr[data-id='{ids[0]}'] button").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "pengiriman-dikirim-ulang")
        assert "dijadwalkan untuk dikirim ulang" in await words(page, "#berhasil")
        assert ids[0] not in await rows(page, "id")
        await wait_for(lambda: ops.gateway.delivered_to(first), timeout=60)

        # The administrators' pages and the complaints list are not theirs.
        for path in ("/petugas/operasi/surat-mati", "/petugas/operasi/outbox", "/petugas/operasi/audit"):
            answer = await page.goto(f"{ops.portal}{path}")
            assert answer is not None and answer.status == 403, path
            assert await page.inner_text("h1") == "Anda tidak berwenang"
        await audit.page(page, "operasi-tidak-berwenang")
        assert await page.get_attribute("#lanjut", "href") == "/petugas/pengiriman"
        answer = await page.goto(f"{ops.portal}/petugas/aduan")
        assert answer is not None and answer.status == 403


async def test_an_administrator_replays_dead_letters_reads_outboxes_and_the_audit_trail(
    browser: Any, operations: Operations
) -> None:
    ops = operations
    # Officers' actions for the audit trail to find (the complaints service's).
    audited, other = [await ops.file(unique_phone()) for _ in range(2)]
    async with httpx.AsyncClient(base_url=ops.urls["complaints"], timeout=30) as client:
        for code, subject in ((audited, "koordinator-operasi"), (other, "koordinator-lain")):
            coordinator = officer_headers("coordinator", subject=subject)
            assert (
                await client.post(f"/officer/complaints/{code}/verify", headers=coordinator)
            ).status_code == 200

    async def both_projected() -> bool:
        return await ops.tracked(audited) and await ops.tracked(other)

    # Only the complaints filed from here on are refused by the view: these two are in it first.
    await wait_for(both_projected, timeout=60)
    await db_execute(ops.integration_db, REFUSE_FILED)
    codes = [await ops.file(unique_phone()) for _ in range(3)]
    await ops.poison()

    async def all_dead() -> dict[str, list[dict[str, Any]]] | None:
        found = await ops.letters()
        done = len(found.get(ops.integration_group, [])) >= 4 and found.get(ops.notifications_group)
        return found if done else None

    await wait_for(all_dead, timeout=90)
    assert not any([await ops.tracked(code) for code in codes])
    async with officer(browser, ops, "operasi-admin", DESKTOP) as (page, audit):
        await sign_in(page, ops, "Adi Admin", "admin")
        assert urlsplit(page.url).path == "/petugas/aduan"  # the coordinator's workspace, and more
        await page.click("#nav-operasi")
        await page.wait_for_load_state("load")
        assert urlsplit(page.url).path == "/petugas/pengiriman"
        await page.get_by_role("link", name="Surat mati").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "surat-mati")
        group = page.locator(f"section[data-group='{ops.integration_group}']")
        text = await group.inner_text()
        assert "handler_error" in text and "invalid_cloudevent" in text and FILED in text
        assert all(code in text for code in codes)  # the tracking codes, never the event's data
        whole = await words(page, "main")
        assert "berlubang" not in whole and "3306061708900041" not in whole  # the complaint's words, the NIK
        notifications = await page.locator(f"section[data-group='{ops.notifications_group}']").inner_text()
        assert "invalid_cloudevent" in notifications

        await db_execute(ops.integration_db, FIX)
        # One letter: its complaint reaches the integration view.
        one = group.locator(f"tr[data-event]:has-text('{codes[0]}')")
        await one.get_by_role("button").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "surat-mati-diputar")
        assert await page.inner_text("#berhasil") == "1 surat mati diputar ulang."
        assert await ops.tracked(codes[0]) and not await ops.tracked(codes[1])
        assert "Sudah diterapkan" in await group.locator(f"tr:has-text('{codes[0]}')").inner_text()
        # The rest of the reason at once.
        await group.get_by_role("button", name="Putar ulang semua handler_error (2)").click()
        await page.wait_for_load_state("load")
        assert await page.inner_text("#berhasil") == "2 surat mati diputar ulang."
        assert all([await ops.tracked(code) for code in codes])
        waiting = await group.locator("tr[data-event]:has-text('Menunggu')").count()
        assert waiting == 1  # only the unreadable record, which a replay cannot mend

        await page.get_by_role("link", name="Outbox").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "outbox")
        complaints = page.locator("tr[data-service='complaints']")
        assert await complaints.locator(".pending").inner_text() == "0"
        assert "WIB" in await complaints.locator(".published").inner_text()
        for absent in ("permits", "health"):
            assert "tidak menjawab" in await page.locator(f"tr[data-service='{absent}']").inner_text()

        await page.get_by_role("link", name="Jejak audit").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "audit")
        today = datetime.now(UTC).astimezone(WIB).date()
        await page.select_option("#layanan", "complaints")
        await page.fill("#petugas", "koordinator-operasi")
        await page.select_option("#tindakan", "write")
        await page.fill("#kode", audited.lower())  # as people type it
        await page.fill("#dari", today.isoformat())
        await page.fill("#sampai", today.isoformat())
        await submit(page, "Cari")
        await audit.page(page, "audit-hasil")
        found = await words(page, "#daftar")
        assert found.count("koordinator-") == 1 and "/verify" in found and audited in found
        # A range that ends before it begins: the error summary, 422.
        await page.fill("#dari", (today + timedelta(days=1)).isoformat())
        assert await _post_and_wait_get(page) == 422
        await audit.page(page, "audit-salah")
        assert "tidak boleh sebelum" in await words(page, ".error-summary")
        await page.get_by_role("link", name="English").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "audit-en")
        assert await page.inner_text("h1") == "Audit trail"


async def _post_and_wait_get(page: Any) -> int:
    """The search sent (a GET form): its answer's status."""
    async with page.expect_response(lambda r: "/petugas/operasi/audit" in r.url) as answered:
        await page.get_by_role("button", name="Cari", exact=True).click()
    await page.wait_for_load_state("load")
    return int((await answered.value).status)
