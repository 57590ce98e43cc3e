"""The forensic test of a citizen's erasure (UU PDP 27/2022) across every service, on the
real broker and PostgreSQL: a citizen with values no one else has uses everything — a
complaint with a photo and one filed anonymously with their contact, a permit application
with uploaded documents (a KTP scan among them), a health booking made and cancelled with
a citizen session, notifications delivered to their phone and email — and the integration
view projects it all. Then:

1. before the erasure each service's export holds every value the scan finds in its
   database (the export shows every place the scan looked);
2. the data protection officer erases the citizen in each domain service (by NIK and by
   the contacts they gave), and the notification service and the integration view read
   every erasure;
3. none of the values is left in clear in any table of any service's database, any record
   of any topic (dead letters included), any log record (every logger, at DEBUG, before
   redaction) or the attachment stores, nor in what a key left would open;
4. no sealed copy of the citizen's data on the topics opens with any key left;
5. the integration view rebuilt from the topics into a new database holds none of it.

The scenario runs once (the module's fixture); each check is its own test and reports
every finding with its place. Every scan is first shown to find the values before the
erasure, where they are expected (tests/forensics_support.py defines them all).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfWriter

from services.complaints.app import ComplaintsSettings
from services.complaints.app import build as build_complaints
from services.health.app import HealthSettings
from services.health.app import build as build_health
from services.integration.app import IntegrationSettings
from services.integration.app import build as build_view
from services.permits.app import PermitsSettings
from services.permits.app import build as build_permits
from shared.kit.citizen import CitizenSessions, remote_keys
from shared.kit.settings import PlatformSettings
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from shared.schemas import DOMAIN_TOPICS, EGOV_TOPICS
from shared.schemas.privacy import PREFIX as ERASURE_EVENTS
from tests.attachment_support import pdf, phone_photo
from tests.citizen_support import open_session
from tests.forensics_support import (
    DatabaseScan,
    Finding,
    LogCapture,
    LoggedRecord,
    Person,
    files_of,
    find,
    keys_left,
    opened,
    report,
    scan_database,
    scan_files,
    scan_logs,
    scan_records,
    sealed_copies,
    values_in,
)
from tests.harness import (
    db_fetch,
    db_fetchval,
    every_topic,
    new_database,
    new_group,
    officer_headers,
    running,
    wait_for,
)
from tests.integration.test_complaints_service import complaint_body
from tests.integration.test_health_service import booking, make_polyclinic, visit_day
from tests.integration.test_permits_service import OFFICER, PBG_DOCUMENTS, pbg_body
from tests.notifications_support import Wiring, asking_keys_of

pytestmark = pytest.mark.timeout(900)  # the whole journey, the erasure and the rebuild

ISSUER = "http://notifications.test"  # the notification service issuing citizen sessions
DOMAIN_SERVICES = ("complaints", "permits", "health")
SERVICES = (*DOMAIN_SERVICES, "notifications", "integration")
ADMIN = officer_headers("admin", subject="pejabat-pelindungan-data")
TEXTS = (
    "complaint title",
    "complaint description",
    "anonymous complaint title",
    "anonymous complaint description",
)

# The loggers of the stand-ins for parties outside Sinergi that run in this process: the
# SMTP sink (aiosmtpd) plays the regency's mail relay, which must read the recipient.
OUTSIDE_PARTIES = ("mail.log",)

# Where the services keep each value before the erasure (the positive control of the
# database scan): values given to a service are in its database.
EXPECTED_IN_DATABASES = {
    "complaints": {"NIK", "phone +628…", "email", "name", *(f"text: {t}" for t in TEXTS)},
    "permits": {"NIK", "phone +628…", "email", "name"},
    "health": {"NIK", "phone +628…", "name"},
}


@dataclass
class Evidence:
    """What the scenario found, by check: each check's findings (none when it holds)."""

    person: Person
    checks: dict[str, list[Finding]] = field(default_factory=dict)

    def add(self, check: str, findings: list[Finding]) -> None:
        self.checks.setdefault(check, []).extend(findings)


def ktp_scan(person: Person) -> bytes:
    """A scanned KTP as a PDF whose metadata names its holder (what scanners write)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Author": person.name, "/Subject": f"KTP {person.nik}"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def upload(client: httpx.AsyncClient, path: str, data: bytes, media_type: str) -> str:
    answer = await client.post(path, files={"file": ("berkas", data, media_type)})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def created(answer: httpx.Response, key: str) -> str:
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()[key])


@dataclass
class Journey:
    """What the citizen started: codes by service, the attachments each store keeps."""

    codes: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def every_code(self) -> list[str]:
        return [code for codes in self.codes.values() for code in codes]


async def use_every_service(
    person: Person, api: dict[str, httpx.AsyncClient], health_app: FastAPI, wiring: Wiring
) -> Journey:
    journey = Journey()
    contacts = {"phone": "0" + person.national, "email": person.email}
    c, p, h, n = api["complaints"], api["permits"], api["health"], api["notifications"]

    photo = await upload(c, "/complaints/photos", phone_photo(), "image/jpeg")
    named = complaint_body(
        title=person.texts["complaint title"],
        description=person.texts["complaint description"],
        reporter={"nik": person.nik, "name": person.name, **contacts},
        photos=[photo],
    )
    anonymous = complaint_body(
        title=person.texts["anonymous complaint title"],
        description=person.texts["anonymous complaint description"],
        anonymous=True,
        reporter={"phone": person.phone, "email": person.email.upper()},
    )
    journey.codes["complaints"] = [
        created(await c.post("/complaints", json=body), "tracking_code") for body in (named, anonymous)
    ]
    journey.files["complaints"] = [photo]

    documents = {"ktp": await upload(p, "/applications/documents", ktp_scan(person), "application/pdf")}
    for code in PBG_DOCUMENTS[1:]:
        documents[code] = await upload(p, "/applications/documents", pdf(), "application/pdf")
    applicant = {
        "nik": person.nik,
        "name": person.name,
        "phone": "62" + person.national,
        "email": person.email,
    }
    body = pbg_body(applicant=applicant, documents=[{"code": k, "upload": v} for k, v in documents.items()])
    permit = created(await p.post("/applications", json=body), "tracking_code")
    # Rejected: an application the law lets the applicant have erased completely.
    rejected = await p.post(
        f"/officer/applications/{permit}/reject",
        json={"reasons": ["Lokasi bukan peruntukan"]},
        headers=OFFICER,
    )
    assert rejected.status_code == 200, rejected.text
    journey.codes["permits"], journey.files["permits"] = [permit], list(documents.values())

    session = await open_session(n, person.phone, wiring.sink, wiring.gateway)
    poli = await make_polyclinic(h)
    day = visit_day(health_app.state.service.context)
    visit = booking(day, poli, nik=person.nik, phone=contacts["phone"], name=person.name)
    code = created(await h.post("/appointments", json=visit, headers=session), "booking_code")
    cancelled = await h.post(f"/appointments/{code}/cancel", json={"reason": "berhalangan"}, headers=session)
    assert cancelled.status_code == 200, cancelled.text
    journey.codes["health"] = [code]
    return journey


async def delivered_and_projected(
    person: Person, journey: Journey, gateway: FakeGateway, sink: SmtpSink, view_database: str
) -> None:
    """Wait until the citizen's phone and email got their messages and the integration
    view has every case in its final status and their notifications."""

    def told() -> bool:
        texts = [r.message or "" for r in gateway.delivered_to(person.phone)]
        return any("Kode verifikasi" not in t for t in texts) and bool(sink.messages_to(person.email.lower()))

    await wait_for(told, timeout=60)
    wanted = {*journey.every_code}
    final = {journey.codes["permits"][0]: "rejected", journey.codes["health"][0]: "cancelled"}

    async def projected() -> bool:
        items = await db_fetch(
            view_database, "SELECT code, status FROM items WHERE code = ANY($1::text[])", wanted
        )
        statuses = {r["code"]: r["status"] for r in items}
        told = await db_fetch(
            view_database, "SELECT DISTINCT code FROM notifications WHERE code = ANY($1::text[])", wanted
        )
        return (
            statuses.keys() == wanted
            and all(statuses[code] == status for code, status in final.items())
            and {r["code"] for r in told} >= {journey.codes[s][0] for s in DOMAIN_SERVICES}
        )

    await wait_for(projected, timeout=60)


def asking_text_keys_of(view: FastAPI, complaints: httpx.AsyncClient) -> FastAPI:
    """`view` asking the in-process complaints service for the text keys of what citizens
    wrote, as it asks over the network deployed. A view that reads no sealed text has no
    text-key client and asks nothing."""
    text_keys = getattr(view.state.service.context, "text_keys", None)
    if text_keys is not None:
        text_keys.clients["complaints"] = complaints
    return view


async def export_of(client: httpx.AsyncClient, person: Person) -> httpx.Response:
    body = {"nik": person.nik, "phone": person.phone, "email": person.email}
    return await client.post("/admin/citizens/export", json=body, headers=ADMIN)


async def erasures_read(databases: dict[str, str]) -> None:
    """Wait until the notification service and the integration view have taken every
    erasure the domain services published into their inboxes."""
    ids: list[str] = []
    for service in DOMAIN_SERVICES:
        rows = await db_fetch(
            databases[service],
            "SELECT event_id::text AS id FROM outbox WHERE event_type LIKE $1",
            ERASURE_EVENTS + "%",
        )
        assert rows, f"{service} published no erasure"
        ids += [r["id"] for r in rows]
    for reader in ("notifications", "integration"):

        async def read_every_one(database: str = databases[reader]) -> bool:
            query = "SELECT count(DISTINCT event_id) FROM inbox WHERE event_id = ANY($1::text[])"
            return await db_fetchval(database, query, ids) == len(ids)

        await wait_for(read_every_one, timeout=60)


async def purged(store: Path, journey: Journey) -> list[Path]:
    """The erased records' files still in the stores once the purge had time to run."""

    def left() -> list[Path]:
        return [path for service, ids in journey.files.items() for path in files_of(store, service, ids)]

    with contextlib.suppress(TimeoutError):  # what is left is the finding
        await wait_for(lambda: not left(), timeout=30)
    return left()


def missing_from(exported: list[Finding], held: list[Finding], where: str) -> list[Finding]:
    """What a database `held` that the export does not show: every value but the NIK (the
    request names it) and, of a record holding nothing but the NIK, the NIK."""
    shown = values_in(exported)
    only_nik = {f.record for f in held} - {f.record for f in held if f.value != "NIK"}
    return [
        Finding(where, f.value, f"missing, though held at {f.place}")
        for f in held
        if f.value not in shown and (f.value != "NIK" or f.record in only_nik)
    ]


def positive_controls(person: Person, before: dict[str, Any]) -> None:
    """Each scan finds the values before the erasure, where they are expected: a scan that
    finds nothing then proves nothing after."""
    for service, expected in EXPECTED_IN_DATABASES.items():
        found = values_in(before["databases"][service].findings)
        assert expected <= found, f"{service}'s database: {sorted(expected - found)} not found by the scan"
    for topic, expected in {
        "complaints.events": {"phone +628…", "email"},
        "permits.events": {"phone +628…", "email"},
        "health.events": {"phone +628…"},
    }.items():
        # Sealed, as they should be: found once opened with the keys that exist now.
        found = values_in(f for f in before["topics"] if f.place.startswith(f"topic {topic} "))
        assert expected <= found, f"{topic}: {sorted(expected - found)} not found in its opened sealed values"
    assert {"name", "NIK"} <= values_in(before["files"]), "the KTP scan's metadata not found in the store"
    logged = before["logs"]
    assert any(r.level == "DEBUG" for r in logged) and any(r.logger.startswith("services.") for r in logged)
    canary = LoggedRecord(
        "canary", "DEBUG", f"filed by {person.name}", {"contact": person.phone, "reporter": person.nik}
    )
    assert values_in(scan_logs(person, [canary])) == {"name", "phone +628…", "NIK"}


async def view_on(infra: Infrastructure, platform: PlatformSettings, database: str, group: str) -> FastAPI:
    """An integration view on `database`, in a consumer group of its own."""
    settings = IntegrationSettings(
        database_url=database,
        platform=platform,
        consumer_group=await new_group(infra, group, DOMAIN_TOPICS),
        gauge_seconds=3600,
    )
    return build_view(settings)


async def every_service(
    infra: Infrastructure, wiring: Wiring, databases: dict[str, str]
) -> dict[str, FastAPI]:
    """The five services on their databases, purging erased attachments at once, the
    health service verifying sessions with the keys the notification service publishes."""
    every = {"platform": wiring.platform, "attachment_purge_seconds": 0.5}
    apps = {
        "complaints": build_complaints(
            ComplaintsSettings(database_url=databases["complaints"], sla_check_seconds=3600, **every)
        ),
        "permits": build_permits(
            PermitsSettings(
                database_url=databases["permits"], sla_check_seconds=3600, expiry_check_seconds=3600, **every
            )
        ),
        "health": build_health(
            HealthSettings(database_url=databases["health"], no_show_check_seconds=3600, **every)
        ),
        "notifications": wiring.build(),
        "integration": await view_on(infra, wiring.platform, databases["integration"], "forensic-view"),
    }
    issuer = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["notifications"]))
    apps["health"].state.citizen_sessions = CitizenSessions(
        wiring.platform, remote_keys(wiring.platform, issuer)
    )
    return apps


async def exports_missing(
    person: Person, api: dict[str, httpx.AsyncClient], scans: dict[str, DatabaseScan]
) -> list[Finding]:
    """Check 1: what each service's database holds about the person that its export
    (the data protection officer's, by NIK, phone and email) does not show."""
    missing: list[Finding] = []
    for service, scan in scans.items():
        if not scan.findings:
            continue
        answer = await export_of(api[service], person)
        where = f"export of {service}"
        if answer.status_code != 200:
            places = sorted({f.place for f in scan.findings})
            missing.append(Finding(where, f"HTTP {answer.status_code}", f"its database holds {places}"))
        else:
            missing += missing_from(find(person, where, answer.text), scan.findings, where)
    return missing


@pytest.fixture(scope="module")
async def forensics(
    infra: Infrastructure,
    platform: PlatformSettings,
    smtp_sink: SmtpSink,
    fake_gateway: FakeGateway,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Evidence]:
    person = Person.unique(*TEXTS)
    evidence = Evidence(person)
    store = tmp_path_factory.mktemp("attachments")
    with LogCapture() as logs:
        plat = platform.model_copy(update={"citizen_issuer": ISSUER, "attachments_dir": store})
        databases = {service: await new_database(infra) for service in SERVICES}
        group = await new_group(infra, "forensic-notifications", EGOV_TOPICS)
        wiring = Wiring(infra, plat, databases["notifications"], group, smtp_sink, fake_gateway)
        apps = await every_service(infra, wiring, databases)
        settings = [app.state.settings for app in apps.values()]
        logs.everything_at_debug()  # the services configured their logging when built

        async with (
            running(apps["complaints"]) as complaints,
            running(apps["permits"]) as permits,
            running(apps["health"]) as health,
            running(apps["notifications"]) as notifications,
            running(apps["integration"]) as view,
        ):
            api = dict(zip(SERVICES, (complaints, permits, health, notifications, view), strict=True))
            asking_keys_of(apps["notifications"], complaints=complaints, permits=permits, health=health)
            asking_text_keys_of(apps["integration"], complaints)
            journey = await use_every_service(person, api, apps["health"], wiring)
            await delivered_and_projected(person, journey, fake_gateway, smtp_sink, databases["integration"])

            # ----- before the erasure: where the values are, and the positive controls
            keys_now = await keys_left(databases.values(), settings)
            topics = await every_topic(infra.kafka_bootstrap)
            before = {
                "databases": {s: await scan_database(url, s, person) for s, url in databases.items()},
                "topics": scan_records(person, topics, keys_now),
                "files": scan_files(person, store),
                "logs": list(logs.records),
            }
            positive_controls(person, before)
            theirs = [
                copy
                for copy in sealed_copies(topics)
                if (inside := opened(copy.token, keys_now)) is not None and find(person, copy.place, inside)
            ]
            sealed_on = {copy.place.split()[1] for copy in theirs}
            assert {"complaints.events", "permits.events", "health.events"} <= sealed_on, sealed_on

            # 1. Each service's export shows what its database holds about the citizen.
            evidence.add("export", await exports_missing(person, api, before["databases"]))

            # 2. The erasure, by NIK and by the contacts the citizen gave.
            for service in DOMAIN_SERVICES:
                erased = await api[service].post(
                    "/admin/citizens/erase",
                    json={"nik": person.nik, "phone": person.phone, "email": person.email},
                    headers=ADMIN,
                )
                assert erased.status_code == 200, (service, erased.text)
            await erasures_read(databases)
            left_files = await purged(store, journey)
            evidence.add(
                "attachments",
                [Finding(f"file {p}", "an erased record's file", "not purged") for p in left_files],
            )

            # 3. and 4. Nothing in clear, nothing a key left opens, no sealed copy opens.
            keys_after = await keys_left(databases.values(), settings)
            for service, url in databases.items():
                evidence.add("databases", (await scan_database(url, service, person, keys_after)).findings)
            evidence.add("topics", scan_records(person, await every_topic(infra.kafka_bootstrap), keys_after))
            evidence.add("attachments", scan_files(person, store))
            evidence.add(
                "sealed copies",
                [
                    Finding(copy.place, f"sealed copy (key {copy.key_id})", "opens with a key left")
                    for copy in theirs
                    if opened(copy.token, keys_after) is not None
                ],
            )

            # 5. The view rebuilt from the topics into a new database.
            rebuilt_database = await new_database(infra)
            rebuilt = await view_on(infra, plat, rebuilt_database, "forensic-rebuild")
            logs.everything_at_debug()
            async with running(asking_text_keys_of(rebuilt, complaints)) as rebuilding:
                answer = await rebuilding.post("/admin/rebuild", headers=ADMIN)
                assert answer.status_code == 200 and answer.json()["complete"], answer.text
            query = "SELECT code FROM items WHERE code = ANY($1::text[])"
            items = await db_fetch(rebuilt_database, query, journey.every_code)
            assert {r["code"] for r in items} == set(journey.every_code), (
                "the rebuild missed the citizen's cases"
            )
            keys = await keys_left([*databases.values(), rebuilt_database], settings)
            scan = await scan_database(rebuilt_database, "integration (rebuilt)", person, keys)
            evidence.add("rebuilt view", scan.findings)
        await apps["health"].state.citizen_sessions.close()
        evidence.add("logs", scan_logs(person, [r for r in logs.records if r.logger not in OUTSIDE_PARTIES]))
    yield evidence


CHECKS = {
    "export": "values a database held that its service's export does not show",
    "databases": "the citizen's values left in the services' databases after the erasure",
    "topics": "the citizen's values readable on the topics after the erasure",
    "logs": "the citizen's values in log records",
    "attachments": "the citizen's files or values left in the attachment stores",
    "sealed copies": "sealed copies of the citizen's data on the topics that a key left still opens",
    "rebuilt view": "the citizen's values in the view rebuilt from the topics after the erasure",
}


@pytest.mark.parametrize("name", list(CHECKS), ids=[name.replace(" ", "-") for name in CHECKS])
async def test_nothing_of_the_erased_citizen_is_left(forensics: Evidence, name: str) -> None:
    findings = forensics.checks.get(name, [])
    assert not findings, f"{CHECKS[name]}: {len(findings)} finding(s)\n{report(findings)}"
