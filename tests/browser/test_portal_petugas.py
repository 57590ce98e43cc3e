"""The officers' workspace in a real browser, signed in through the regency's identity
provider (the suite's Keycloak with the deployment's realm and its `sinergi-petugas`
client): a coordinator and an OPD officer take a complaint from new to resolved and its
reporter's email arrives in the suite's SMTP sink at each step that notifies; a
duplicate is merged through the suggestion; another OPD's complaint never shows in the
OPD officer's queue and is "not authorised" when asked for; a signed-out officer is sent
to sign in and comes back to the page asked for; signing out ends the provider's session
too. Every workspace page is audited (axe-core, weight, origins, a screenshot in
test-artifacts/portal/).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.permits.api import SubmitIn
from shared.kit.bodies import example_of
from shared.reference import default_calendar
from shared.runtime.dev_issuer import DevelopmentIssuer
from shared.runtime.embedded import free_port
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.browser.portal_support import DESKTOP, Audit, audited, send_form, service_processes
from tests.browser.test_portal import words
from tests.browser.test_portal_klinik import POLYCLINIC, TV, today_with_a_queue
from tests.faults.support import DOMAIN_TOPICS, notifications_process
from tests.harness import new_database, new_group, wait_for
from tests.identity_support import PASSWORD, Provider
from tests.integration.test_complaints_service import complaint_body
from tests.practice_days import clinic_today

TABLET = {"width": 1024, "height": 768}
SERVICES = ("complaints", "permits", "health", "notifications", "portal")
# The realm's officer of one puskesmas (tests/identity_support.py OFFICERS), its facility.
HEALTH_OFFICER, HEALTH_FACILITY = "petugas-bayan", "PKM-BAYAN"


@dataclass
class Workspace:
    portal: str
    complaints: str
    provider: Provider
    sink: SmtpSink
    permits: str = ""
    health: str = ""
    # Signs the citizens' sessions the health service takes for bookings.
    citizens: DevelopmentIssuer | None = None
    # The health service's today (HEALTH_TODAY): a day the clinic's polyclinic practises.
    health_today: date | None = None

    @property
    def provider_origin(self) -> str:
        parts = urlsplit(self.provider.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    async def file(self, email: str, nik: str, **overrides: object) -> str:
        body = complaint_body(reporter={"nik": nik, "email": email}, **overrides)
        async with httpx.AsyncClient(base_url=self.complaints, timeout=30) as client:
            filed = await client.post("/complaints", json=body)
        assert filed.status_code == 201, filed.text
        return str(filed.json()["tracking_code"])

    async def status(self, code: str) -> str:
        async with httpx.AsyncClient(base_url=self.complaints, timeout=30) as client:
            return str((await client.get(f"/complaints/{code}")).json()["status"])

    async def mail(self, email: str, subject: str) -> str:
        """The text of the message to `email` whose subject holds `subject`, once it came."""

        def arrived() -> str | None:
            found = [m for m in self.sink.messages_to(email) if subject in m.subject]
            return found[-1].text if found else None

        return str(await wait_for(arrived, timeout=60))


@pytest.fixture(scope="module")
async def workspace(
    infra: Infrastructure, provider: Provider, smtp_sink: SmtpSink, fake_gateway: FakeGateway
) -> AsyncIterator[Workspace]:
    """Complaints, notifications and the portal, each its own process, all trusting the
    provider; the portal on the address the realm's client sends officers back to."""
    ports = {name: free_port() for name in SERVICES}
    ports["portal"] = provider.portal_port
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {name: await new_database(infra) for name in SERVICES}
    group = await new_group(infra, "notifications-petugas", DOMAIN_TOPICS.values())
    oidc = {"SINERGI_OIDC_ISSUER": provider.issuer}
    health_today = clinic_today(default_calendar())
    with DevelopmentIssuer() as citizens:
        environments = {
            "complaints": oidc,
            "permits": oidc,
            "health": {
                **oidc,
                **citizens.env,
                "HEALTH_NO_SHOW_CHECK_SECONDS": "3600",
                "HEALTH_TODAY": health_today.isoformat(),
            },
            "notifications": {
                **notifications_process(
                    infra, databases["notifications"], group, smtp_sink, fake_gateway, key_holders=urls
                ).env,
                **oidc,
            },
            "portal": {
                **oidc,
                "PORTAL_PUBLIC_URL": urls["portal"],
                "PORTAL_OIDC_CLIENT_SECRET": provider.keycloak.client_secret,
                "PORTAL_COMPLAINTS_URL": urls["complaints"],
                "PORTAL_PERMITS_URL": urls["permits"],
                "PORTAL_HEALTH_URL": urls["health"],
                "PORTAL_UPSTREAM_TIMEOUT_SECONDS": "10",
            },
        }
        specs = {name: (ports[name], databases[name], environments[name]) for name in SERVICES}
        async with service_processes(infra, specs):
            yield Workspace(
                urls["portal"],
                urls["complaints"],
                provider,
                smtp_sink,
                urls["permits"],
                urls["health"],
                citizens,
                health_today,
            )


@asynccontextmanager
async def officer(
    browser: Any, ws: Workspace, label: str, viewport: dict[str, int]
) -> AsyncIterator[tuple[Any, Audit]]:
    async with audited(browser, ws.portal, label, viewport) as opened:
        yield opened


async def sign_in_at_provider(page: Any, ws: Workspace, audit: Audit, username: str) -> None:
    """The provider's own login page (the browser was sent there), then back."""
    await page.wait_for_url(f"{ws.provider.issuer}/**")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#kc-login")
    await page.wait_for_url(f"{ws.portal}/**")
    audit.leave_site(ws.provider_origin)


async def submit(page: Any, button: str) -> None:
    await page.get_by_role("button", name=button, exact=True).click()
    await page.wait_for_load_state("load")


async def test_a_complaint_from_new_to_resolved_by_a_coordinator_and_an_opd_officer(
    browser: Any, workspace: Workspace
) -> None:
    ws = workspace
    reporter, duplicate_reporter, other_reporter = (
        "pelapor-petugas@example.com",
        "pelapor-ganda@example.com",
        "pelapor-sampah@example.com",
    )
    code = await ws.file(reporter, "3306061708900031")
    duplicate = await ws.file(
        duplicate_reporter, "3306061708900032", title="Jalan berlubang lagi dekat balai"
    )
    elsewhere = await ws.file(
        other_reporter, "3306061708900033", category="sampah", title="Sampah menumpuk di pasar"
    )

    # ----- the coordinator ---------------------------------------------------------------
    async with officer(browser, ws, "petugas-koordinator", DESKTOP) as (page, audit):
        # Signed out, a complaint's page sends the officer to sign in, then back to it.
        await page.goto(f"{ws.portal}/petugas/aduan/{code}")
        await sign_in_at_provider(page, ws, audit, "koordinator")
        assert urlsplit(page.url).path == f"/petugas/aduan/{code}"
        await audit.page(page, "aduan-baru")
        assert await page.inner_text("#status") == "Baru"

        await page.goto(f"{ws.portal}/petugas")
        await audit.page(page, "kotak-masuk")
        assert await page.inner_text("h1") == "Kotak masuk koordinator"
        rows = await page.locator("#daftar tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
        assert {code, duplicate, elsewhere} <= set(rows)
        # Each row says where its SLA stands in words, not only colour.
        first = page.locator(f"tr[data-code='{code}'] .tag")
        assert await first.inner_text() in ("Sesuai jadwal", "Jatuh tempo hari ini", "Terlambat")

        # The duplicate is merged into the earlier complaint through the suggestion.
        await page.goto(f"{ws.portal}/petugas/aduan/{duplicate}")
        await page.check(f"input[name='duplikat'][value='{code}']")
        await submit(page, "Gabungkan")
        await audit.page(page, "digabung")
        assert await page.inner_text("#status") == "Digabung"
        await ws.mail(duplicate_reporter, "digabung dengan laporan yang sama")

        # A form sent empty: an error summary linking to the field, 422.
        await page.goto(f"{ws.portal}/petugas/aduan/{code}")
        response = await send_form(page, "Tolak pengaduan")
        assert response == 422
        await audit.page(page, "tolak-kosong")
        assert "Tulis penjelasan untuk pelapor" in await words(page, ".error-summary")
        assert await page.get_attribute(".error-summary a", "href") == "#alasan"

        await submit(page, "Verifikasi pengaduan")
        await audit.page(page, "diverifikasi")
        assert await page.inner_text("#status") == "Terverifikasi"
        await ws.mail(reporter, "telah diverifikasi")

        await page.select_option("#opd", "DPUPR")
        await page.fill("#catatan", "Mohon ditinjau minggu ini.")
        await submit(page, "Disposisikan")
        await audit.page(page, "didisposisikan")
        assert await page.inner_text("#status") == "Didisposisikan"
        await ws.mail(reporter, "diteruskan ke Dinas Pekerjaan Umum")

        # Another OPD's complaint: verified and disposed to DLH.
        await page.goto(f"{ws.portal}/petugas/aduan/{elsewhere}")
        await submit(page, "Verifikasi pengaduan")
        await page.select_option("#opd", "DLH")
        await submit(page, "Disposisikan")
        assert await page.inner_text("#status") == "Didisposisikan"

        # Signing out ends the provider's session too: the next visit asks for a password.
        await submit(page, "Keluar")
        await page.wait_for_url(f"{ws.portal}/petugas/keluar/selesai")
        audit.leave_site(ws.provider_origin)
        await audit.page(page, "keluar")
        await page.goto(f"{ws.portal}/petugas/aduan")
        await page.wait_for_url(f"{ws.provider.issuer}/**")
        assert await page.locator("#password").count() == 1
        audit.leave_site(ws.provider_origin)

    # ----- the OPD officer (DPUPR), on a tablet ------------------------------------------
    async with officer(browser, ws, "petugas-opd", TABLET) as (page, audit):
        await page.goto(f"{ws.portal}/petugas")
        await sign_in_at_provider(page, ws, audit, "opd-dpupr")
        await audit.page(page, "antrean-opd")
        assert await page.inner_text("h1") == "Antrean pengaduan OPD"
        listed = await page.locator("#daftar tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
        assert code in listed and elsewhere not in listed
        # Asked for by its address, DLH's complaint is refused by the service.
        answer = await page.goto(f"{ws.portal}/petugas/aduan/{elsewhere}")
        assert answer is not None and answer.status == 403
        await audit.page(page, "tidak-berwenang")
        assert await page.inner_text("h1") == "Anda tidak berwenang"
        assert "Sampah menumpuk" not in await page.content()

        await page.goto(f"{ws.portal}/petugas/aduan/{code}")
        await page.fill("#tanggapan", "Tim kami akan menambal jalan ini pekan depan.")
        await submit(page, "Kirim tanggapan")
        await audit.page(page, "ditanggapi")
        assert await page.inner_text("#status") == "Ditangani"
        await ws.mail(reporter, "Tanggapan atas pengaduan")

        await page.fill("#catatan_progres", "Material sudah dikirim ke lokasi.")
        await submit(page, "Kirim perkembangan")
        await ws.mail(reporter, "Perkembangan pengaduan")

        await page.fill("#penyelesaian", "Lubang sudah ditambal dan jalan dapat dilalui.")
        await submit(page, "Nyatakan selesai")
        await audit.page(page, "selesai")
        assert await page.inner_text("#status") == "Selesai ditangani"
        await ws.mail(reporter, "telah diselesaikan")
        history = await words(page, "table[aria-labelledby='riwayat']")
        for action in (
            "Diverifikasi",
            "Didisposisikan",
            "Ditanggapi",
            "Perkembangan dilaporkan",
            "Dinyatakan selesai",
        ):
            assert action in history
    assert await ws.status(code) == "resolved"
    assert await ws.status(duplicate) == "merged"
    assert await ws.status(elsewhere) == "dispatched"


async def test_a_health_officer_signed_in_at_the_provider_calls_the_next_number_onto_the_display(
    browser: Any, workspace: Workspace
) -> None:
    """A puskesmas officer signs in at the regency's provider and lands on their facility's
    queue (the token's facility claim); the number they call reaches the waiting-room
    display, open on a television without signing in, without a reload."""
    from playwright.async_api import expect

    ws = workspace
    assert ws.citizens is not None and ws.health_today is not None
    await today_with_a_queue(
        ws.health, ws.citizens, ws.health_today, HEALTH_FACILITY, ws.provider.headers(HEALTH_OFFICER)
    )
    async with (
        officer(browser, ws, "petugas-klinik", TABLET) as (page, audit),
        audited(browser, ws.portal, "petugas-layar", TV) as (tv, tv_audit),
    ):
        await page.goto(f"{ws.portal}/petugas")
        await sign_in_at_provider(page, ws, audit, HEALTH_OFFICER)
        await page.wait_for_url(f"{ws.portal}/petugas/klinik/{HEALTH_FACILITY}")
        await audit.page(page, "antrean-hari-ini")
        await page.goto(f"{ws.portal}/petugas/klinik/{HEALTH_FACILITY}/poli/{POLYCLINIC}")
        await audit.page(page, "poli")
        await tv.goto(f"{ws.portal}/antrean/layar/{HEALTH_FACILITY}/{POLYCLINIC}")
        await tv_audit.page(tv, "layar")
        assert await words(tv, "#dipanggil") == "—"

        await page.get_by_role("button", name="Panggil berikutnya").click()
        await expect(page.locator("#dipanggil")).to_have_text("Nomor K-001 dipanggil.")
        await expect(tv.locator("#dipanggil")).to_have_text("K-001")
        await tv_audit.page(tv, "layar-dipanggil")
        # Another facility's queue is the health service's to refuse.
        refused = await page.goto(f"{ws.portal}/petugas/klinik/PKM-KUTOARJO")
        assert refused is not None and refused.status == 403
        audit.check()
        tv_audit.check()


async def test_a_signed_out_officer_is_sent_to_sign_in_and_a_bad_return_is_refused(
    workspace: Workspace,
) -> None:
    async with httpx.AsyncClient(base_url=workspace.portal, timeout=30) as client:
        for path in ("/petugas/aduan", "/petugas/aduan/ADU-2612-7K3M-9QW2-XAB4D?x=1"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/petugas/masuk?lanjut=")
        # The sign-in goes to the provider with PKCE (S256) for the realm's client.
        started = await client.get("/petugas/masuk", params={"lanjut": "https://elsewhere.example/"})
        assert started.status_code == 303
        where = httpx.URL(started.headers["location"])
        assert str(where).startswith(workspace.provider.issuer)
        assert where.params["code_challenge_method"] == "S256"
        assert where.params["client_id"] == "sinergi-petugas"
        assert where.params["redirect_uri"] == f"{workspace.portal}/petugas/masuk/kembali"
        # A forged return (a state this browser never started) makes no session.
        forged = await client.get("/petugas/masuk/kembali", params={"code": "x", "state": "forged"})
        assert forged.status_code == 400
        assert "petugas" not in forged.cookies and "petugas" not in client.cookies


@pytest.fixture(scope="module")
async def development(infra: Infrastructure) -> AsyncIterator[Workspace]:
    """Complaints and the portal as `make run` starts them without a provider: the
    development sign-in and the kit's development tokens."""
    ports = {"complaints": free_port(), "portal": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    specs = {
        "complaints": (ports["complaints"], await new_database(infra), {}),
        "portal": (
            ports["portal"],
            await new_database(infra),
            {"PORTAL_COMPLAINTS_URL": urls["complaints"], "PORTAL_PUBLIC_URL": urls["portal"]},
        ),
    }
    async with service_processes(infra, specs):
        yield Workspace(urls["portal"], urls["complaints"], None, None)  # type: ignore[arg-type]


async def test_the_development_sign_in_without_a_provider(browser: Any, development: Workspace) -> None:
    ws = development
    code = await ws.file("pelapor-dev@example.com", "3306061708900034")
    async with officer(browser, ws, "petugas-pengembangan", DESKTOP) as (page, audit):
        await page.goto(f"{ws.portal}/petugas/aduan/{code}")
        assert urlsplit(page.url).path == "/petugas/masuk"
        await audit.page(page, "masuk-pengembangan")
        assert await page.inner_text("h1") == "Masuk (pengembangan)"
        assert await send_form(page, "Masuk") == 422
        await audit.page(page, "masuk-kosong")
        assert "Masukkan nama petugas" in await words(page, ".error-summary")
        await page.fill("#nama", "Sri Lestari")
        await page.check("input[name='peran'][value='coordinator']")
        await submit(page, "Masuk")
        assert urlsplit(page.url).path == f"/petugas/aduan/{code}"
        # The session's cookie: only the workspace's pages get it, never a script.
        [cookie] = [c for c in await page.context.cookies() if c["name"] == "petugas"]
        assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == ("/petugas", True, "Lax")
        await submit(page, "Verifikasi pengaduan")
        assert await page.inner_text("#status") == "Terverifikasi"
        await page.get_by_role("link", name="English").click()
        await page.wait_for_load_state("load")
        await audit.page(page, "verified-en")
        assert await page.inner_text("#status") == "Verified"
        await page.goto(f"{ws.portal}/petugas/aduan")
        assert await page.inner_text("h1") == "Coordinator's inbox"
        # What is not a complaint's code is an unknown complaint, never an error.
        for path in ("/petugas/aduan/bukan-kode", "/petugas/aduan/%3Fstatus=x", "/petugas/izin/ADU-1"):
            answer = await page.goto(f"{ws.portal}{path}")
            assert answer is not None and answer.status == 404, path
        await submit(page, "Sign out")
        assert urlsplit(page.url).path == "/petugas/keluar/selesai"
        await audit.page(page, "signed-out-en")
        await page.goto(f"{ws.portal}/petugas/aduan")
        assert urlsplit(page.url).path == "/petugas/masuk"
    assert await ws.status(code) == "verified"


async def test_the_licensing_office_checks_an_applications_documents(
    browser: Any, workspace: Workspace
) -> None:
    ws = workspace
    applicant = "pemohon-izin@example.com"
    body = example_of(SubmitIn)
    body["applicant"] = {**body["applicant"], "email": applicant}
    async with httpx.AsyncClient(base_url=ws.permits, timeout=30) as client:
        submitted = await client.post("/applications", json=body)
        assert submitted.status_code == 201, submitted.text
        code = submitted.json()["tracking_code"]
    async with officer(browser, ws, "petugas-izin", DESKTOP) as (page, audit):
        await page.goto(f"{ws.portal}/petugas")
        await sign_in_at_provider(page, ws, audit, "petugas-dpmptsp")
        assert urlsplit(page.url).path == "/petugas/izin"
        await audit.page(page, "antrean-izin")
        await page.click(f"a[href='/petugas/izin/{code}']")
        await page.wait_for_load_state("load")
        await audit.page(page, "permohonan")
        assert await page.inner_text("#status") == "Baru"
        # Incomplete without naming what is missing: the error summary, 422.
        await page.check("input[name='hasil'][value='incomplete']")
        assert await send_form(page, "Simpan hasil pemeriksaan") == 422
        await audit.page(page, "berkas-kosong")
        assert "Pilih dokumen yang kurang" in await words(page, ".error-summary")
        await page.check("input[name='kurang'][value='krk']")
        await page.fill("#catatan_berkas", "KRK sudah kedaluwarsa, mohon unggah yang baru.")
        await submit(page, "Simpan hasil pemeriksaan")
        await audit.page(page, "berkas-dikembalikan")
        assert await page.inner_text("#status") == "Berkas belum lengkap"
        await ws.mail(applicant, "belum lengkap")
    async with httpx.AsyncClient(base_url=ws.permits, timeout=30) as client:
        followed = (await client.get(f"/applications/{code}")).json()
    assert followed["status"] == "documents_incomplete" and followed["missing_documents"] == ["krk"]
