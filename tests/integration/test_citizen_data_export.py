"""A citizen's data export across every service, assembled by the portal: complaints,
permits, health, the notification service and the integration view, each its own
process on the suite's broker and PostgreSQL (as `make run` starts them).

- The citizen, signed in to Layanan saya with the phone they proved, downloads one JSON
  document with their complaint, permit application, booking, the message delivered to
  them (its address in clear: theirs) and their timeline; a session of another phone
  stating the same NIK gets the same document shape with nothing in it.
- The data protection officer (an administrator) gets the citizen's document by NIK from
  the workspace, addresses masked; a bad NIK is the form again with its message (422).
- Every service that answered and the portal have the export in their audit trail, by
  reference only; with a service away there is no document but the 503 page.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from services.complaints.repository import CitizenRecords as ComplaintRecords
from services.permits.catalogue import load_catalogue
from services.permits.repository import CitizenRecords as PermitRecords
from shared.kit.citizen_data import Citizen
from shared.kit.privacy import citizen_ref, contact_ref
from shared.kit.settings import PlatformSettings
from tests.browser.citizen_portal_support import CitizenStack
from tests.citizen_data_support import (
    DOMAINS,
    Held,
    citizen_signed_in,
    csrf_of,
    export_fixtures,
    officer_signed_in,
)
from tests.citizen_support import open_session
from tests.harness import db_fetch, officer_headers

NIK = "3306061708900051"
PHONE = "081355550051"
STRANGER = "081366660052"  # another phone, stating the citizen's NIK


stack, held = export_fixtures(NIK, PHONE)


def portal(stack: CitizenStack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.portal, timeout=60)


def downloaded(answer: httpx.Response, kind: str = "data-saya") -> dict[str, Any]:
    """The document of a download named for `kind` (the citizen's own; "data-warga": the
    data protection officer's), as every download is sent."""
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"] == "application/json"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="{kind}-') and disposition.endswith('.json"')
    assert NIK not in disposition
    assert answer.headers["cache-control"] == "no-store"
    document = answer.json()
    assert document["services_answered"] == list(DOMAINS)
    return dict(document)


def codes_in(document: dict[str, Any]) -> dict[str, set[str]]:
    parts = document["services"]
    return {
        "complaints": {r["tracking_code"] for r in parts["complaints"]["complaints"]},
        "permits": {r["tracking_code"] for r in parts["permits"]["applications"]},
        "health": {r["booking_code"] for r in parts["health"]["appointments"]},
        "notifications": {r["tracking_code"] for r in parts["notifications"]["notifications"]},
        "integration": {r["code"] for r in parts["integration"]["items"]},
    }


async def audit_rows(stack: CitizenStack, export_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each service's audit entries naming the export (the portal's from its database)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in DOMAINS:
        async with httpx.AsyncClient(base_url=stack.urls[name], timeout=30) as client:
            answer = await client.get(
                "/admin/audit", params={"aggregate": f"export:{export_id}"}, headers=officer_headers()
            )
        assert answer.status_code == 200, answer.text
        found[name] = answer.json()
    rows = await db_fetch(
        stack.databases["portal"],
        "SELECT subject, role, action, aggregates, events FROM audit_log WHERE $1 = ANY(aggregates) ORDER BY id",
        f"export:{export_id}",
    )
    found["portal"] = [dict(r) for r in rows]
    return found


async def test_the_citizen_downloads_one_document_of_everything_linked_to_their_contact(
    stack: CitizenStack, held: Held, platform: PlatformSettings
) -> None:
    async with portal(stack) as client:
        await citizen_signed_in(stack, client, PHONE, NIK)
        layanan = await client.get("/layanan")
        assert 'action="/layanan/unduh"' in layanan.text and "Unduh data saya" in layanan.text
        document = downloaded(
            await client.post("/layanan/unduh", data={"csrf": await csrf_of(client, "/layanan")})
        )

    found = codes_in(document)
    assert found["complaints"] == {held.complaint}
    assert found["permits"] == {held.application}
    assert found["health"] == {held.booking}
    assert held.complaint in found["notifications"]
    assert held.codes <= found["integration"]
    messages = document["services"]["notifications"]["notifications"]
    delivered = [m for m in messages if m["tracking_code"] == held.complaint and m["status"] == "delivered"]
    assert delivered and all(m["address"] == held.phone for m in delivered), "their own address, in clear"
    assert document["services"]["notifications"]["verified_contacts"], "the phone they proved"
    timeline = document["services"]["integration"]["timeline"]
    assert {e["code"] for e in timeline} >= held.codes

    # The export's read is in every service's audit trail and the portal's: requested,
    # then delivered, by the contact's reference (never the phone or the NIK).
    key = platform.citizen_ref_key.get_secret_value()
    ref = contact_ref(held.phone, key)
    trails = await audit_rows(stack, document["export_id"])
    for name in DOMAINS:
        (entry,) = trails[name]
        assert (entry["subject"], entry["role"], entry["action"]) == (ref, "citizen", "read"), name
        assert entry["events"] == ["citizen.export.delivered"] and ref in entry["aggregates"]
    assert [r["events"][0] for r in trails["portal"]] == [
        "citizen.export.requested",
        "citizen.export.delivered",
    ]
    assert {r["subject"] for r in trails["portal"]} == {ref}
    assert NIK not in json.dumps(trails, default=str) and PHONE[1:] not in json.dumps(trails, default=str)


async def test_a_nik_typed_with_another_contact_finds_nothing(stack: CitizenStack, held: Held) -> None:
    async with portal(stack) as client:
        await citizen_signed_in(stack, client, STRANGER, held.nik)
        document = downloaded(
            await client.post("/layanan/unduh", data={"csrf": await csrf_of(client, "/layanan")})
        )
    # Every kind is there and empty but the contact the stranger proved themselves.
    records = {
        (service, kind): len(rows)
        for service, kinds in document["services"].items()
        for kind, rows in kinds.items()
    }
    assert records == {
        **{key: 0 for key in records},
        ("notifications", "notifications"): records[("notifications", "notifications")],
        ("notifications", "verified_contacts"): 1,
    }
    messages = document["services"]["notifications"]["notifications"]
    assert all(m["tracking_code"] is None for m in messages), "only their own sign-in codes"


async def test_the_data_protection_officer_downloads_a_citizens_document_by_nik(
    stack: CitizenStack, held: Held, platform: PlatformSettings
) -> None:
    async with portal(stack) as client:
        await officer_signed_in(client)
        token = await csrf_of(client, "/petugas/operasi/data-warga")
        refused = await client.post("/petugas/operasi/data-warga", data={"csrf": token, "nik": "12345"})
        assert refused.status_code == 422
        assert "error-summary" in refused.text and 'href="#nik"' in refused.text
        answer = await client.post("/petugas/operasi/data-warga", data={"csrf": token, "nik": held.nik})
        document = downloaded(answer, "data-warga")

    found = codes_in(document)
    assert (found["complaints"], found["permits"], found["health"]) == (
        {held.complaint},
        {held.application},
        {held.booking},
    )
    assert held.codes <= found["integration"]
    messages = [m for m in document["services"]["notifications"]["notifications"] if m["tracking_code"]]
    assert messages and all(m["address"] != held.phone and "*" in m["address"] for m in messages), "masked"

    ref = citizen_ref(held.nik, platform.citizen_ref_key.get_secret_value())
    trails = await audit_rows(stack, document["export_id"])
    for name in DOMAINS:
        (entry,) = trails[name]
        assert (entry["subject"], entry["role"], entry["action"]) == (
            "dev-dina-pelindung-data",
            "admin",
            "read",
        )
        assert ref in entry["aggregates"]
    assert [r["events"][0] for r in trails["portal"]] == [
        "citizen.export.requested",
        "citizen.export.delivered",
    ]
    assert NIK not in json.dumps(trails, default=str)


async def test_an_export_finds_complaints_and_applications_through_indexes(
    stack: CitizenStack, held: Held, platform: PlatformSettings
) -> None:
    # Every condition of the export's statement has an index: with sequential scans
    # priced out, PostgreSQL plans no scan of the table (it would without one index).
    key = platform.citizen_ref_key.get_secret_value()
    citizen = Citizen(held.nik, citizen_ref(held.nik, key), (held.phone,), (contact_ref(held.phone, key),))
    tables = {"complaints": ComplaintRecords(), "permits": PermitRecords(load_catalogue())}
    for name, records in tables.items():
        conn = await asyncpg.connect(stack.databases[name])
        try:
            await conn.execute("SET enable_seqscan = off")
            plan = str(await conn.fetchval("EXPLAIN (FORMAT JSON) " + records.export_query, *citizen.params))
        finally:
            await conn.close()
        assert f'"Relation Name": "{records.table}"' in plan, plan
        assert "Seq Scan" not in plan, (name, plan)


async def test_a_service_exports_only_for_the_contact_the_session_proved(
    stack: CitizenStack, held: Held
) -> None:
    async with httpx.AsyncClient(base_url=stack.notifications, timeout=30) as api:
        session = await open_session(api, STRANGER, stack.sink, stack.gateway, nik=held.nik)
    for name in DOMAINS:
        async with httpx.AsyncClient(base_url=stack.urls[name], timeout=30) as client:
            anonymous = await client.post("/citizen/export", json={"contact": PHONE})
            assert anonymous.status_code == 401, name
            claimed = await client.post("/citizen/export", json={"contact": PHONE}, headers=session)
            assert claimed.status_code == 422, name
            assert [e["loc"] for e in claimed.json()["detail"]] == [["body", "contact"]], name
            malformed = await client.post("/citizen/export", json={"contact": "12"}, headers=session)
            assert malformed.status_code == 422, name


async def test_a_service_away_is_no_document_but_the_503_page(stack: CitizenStack, held: Held) -> None:
    async with portal(stack) as client:
        await officer_signed_in(client)
        token = await csrf_of(client, "/petugas/operasi/data-warga")
        stack.stop("integration")
        answer = await client.post("/petugas/operasi/data-warga", data={"csrf": token, "nik": held.nik})
    assert answer.status_code == 503
    assert answer.headers["retry-after"].isdigit()
    assert answer.headers["content-type"].startswith("text/html")
    assert "Daftar layanan Anda sedang tidak dapat dihubungi" in answer.text
