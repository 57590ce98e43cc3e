"""Open311 GeoReport v2 on the complaints service, against the real broker and PostgreSQL:
conformance to the specification's field lists in JSON and XML, every error, API keys
(issued, hashed, revoked, rate-limited), privacy of the public list, a client library
from PyPI end to end, the curl examples of docs/open311.md, and an Open311 report
reaching the notification service and the integration view like a native one."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import uvicorn
import xmltodict
from georeport import GeoReport

from services.complaints.app import ComplaintsSettings, build
from services.complaints.catalogue import load_catalogue
from services.integration.app import build as build_view
from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from tests import open311_support as spec
from tests.harness import db_fetch, db_fetchval, new_database, officer_headers, published, running, wait_for
from tests.harness import repo_root as root
from tests.integration.test_abuse_limits import with_rule
from tests.integration.test_complaints_service import complaint_body
from tests.notifications_support import Wiring, asking_keys_of, unique_email
from tests.view_support import view_settings

V2 = "/open311/v2"
NIK = "3306061708900001"
DESA = "33.06.01.2001"
CATALOGUE = load_catalogue()
REPORT = {
    "service_code": "jalan_rusak",
    "address_id": DESA,
    "lat": "-7.7125",
    "long": "110.0136",
    "description": "Lubang besar di jalan desa dekat balai desa, membahayakan pengendara motor.",
}


def complaints_app(database: str, platform: PlatformSettings) -> Any:
    return build(ComplaintsSettings(database_url=database, platform=platform, sla_check_seconds=3600))


@pytest.fixture
async def api(infra: Infrastructure, platform: PlatformSettings, fresh_database: str) -> AsyncIterator[Any]:
    async with running(complaints_app(fresh_database, platform)) as client:
        yield client


async def issue_key(
    client: httpx.AsyncClient, name: str = "Aplikasi Lapor Desa (Komunitas X)"
) -> dict[str, Any]:
    issued = await client.post("/admin/open311/keys", json={"client": name}, headers=officer_headers("admin"))
    assert issued.status_code == 201, issued.text
    return issued.json()


async def post(client: httpx.AsyncClient, key: str | None, fmt: str = "json", **form: str) -> httpx.Response:
    data = {**REPORT, **form} | ({"api_key": key} if key is not None else {})
    return await client.post(f"{V2}/requests.{fmt}", data=data)


async def filed(client: httpx.AsyncClient, key: str, **form: str) -> dict[str, Any]:
    answer = await post(client, key, **form)
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()
    return item


def errors_of(response: httpx.Response, status: int) -> list[str]:
    """The specification's error list (JSON or XML): its descriptions, all with `status`."""
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/xml"):
        items = spec.xml_items(response.content, "errors")
    else:
        assert response.headers["content-type"] == "application/json"
        items = response.json()
    assert items and all(set(i) == spec.ERROR and int(i["code"]) == status for i in items), items
    return [i["description"] for i in items]


# ----- conformance -----------------------------------------------------------------------------


async def test_discovery_services_and_definitions_in_both_formats(api: httpx.AsyncClient) -> None:
    discovery = (await api.get(f"{V2}/discovery.json")).json()
    assert set(discovery) == spec.DISCOVERY
    assert discovery["endpoints"][0]["url"].endswith(V2)
    xml_discovery = xmltodict.parse((await api.get(f"{V2}/discovery.xml")).content)["discovery"]
    assert set(xml_discovery) == spec.DISCOVERY
    assert set(xml_discovery["endpoints"]["endpoint"]) == spec.ENDPOINT

    services = await api.get(f"{V2}/services.json")
    assert services.headers["content-type"] == "application/json"
    assert [s["service_code"] for s in services.json()] == list(CATALOGUE.categories)
    assert all(set(s) == spec.SERVICE for s in services.json())
    as_xml = await api.get(f"{V2}/services.xml")
    assert as_xml.headers["content-type"] == "text/xml; charset=utf-8"
    items = spec.xml_items(as_xml.content, "services")
    assert [i["service_code"] for i in items] == list(CATALOGUE.categories)
    assert all(set(i) == spec.SERVICE and i["metadata"] == "true" for i in items)

    definition = (await api.get(f"{V2}/services/jalan_rusak.json")).json()
    assert set(definition) == spec.DEFINITION
    assert all(set(a) >= spec.ATTRIBUTE for a in definition["attributes"])
    xml_definition = xmltodict.parse((await api.get(f"{V2}/services/jalan_rusak.xml")).content)
    attributes = xml_definition["service_definition"]["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == [a["code"] for a in definition["attributes"]]


async def test_a_form_post_is_a_complaint_followed_by_token_id_and_list_in_json_and_xml(
    api: httpx.AsyncClient, infra: Infrastructure, fresh_database: str
) -> None:
    key = await issue_key(api)
    email = unique_email()
    named = await filed(
        api, key["api_key"], **{"attribute[nik]": NIK, "email": email, "phone": "081234567890"}
    )
    assert set(named) >= spec.POSTED and re.fullmatch(
        r"ADU-\d{4}(-[0-9A-Z]{4,5}){3}", named["service_request_id"]
    )
    code = named["service_request_id"]
    # XML filing, anonymous, placed by its address.
    as_xml = await post(
        api,
        key["api_key"],
        "xml",
        service_code="sampah",
        address_id="",
        lat="",
        long="",
        address_string="Jalan Raya, Desa Harjobinangun, Kecamatan Grabag",
    )
    (other,) = spec.xml_items(as_xml.content, "requests")
    assert set(other) >= spec.POSTED
    other_code = other["service_request_id"]

    # By token, both formats.
    by_token = (await api.get(f"{V2}/tokens/{named['token']}.json")).json()
    assert by_token == [{"service_request_id": code, "token": named["token"]}]
    token_xml = spec.xml_items((await api.get(f"{V2}/tokens/{other['token']}.xml")).content, "requests")
    assert token_xml == [{"service_request_id": other_code, "token": other["token"]}]

    # By id, both formats: the specification's fields, Sinergi's values.
    (request,) = (await api.get(f"{V2}/requests/{code}.json")).json()
    assert set(request) == spec.REQUEST
    assert request["status"] == "open" and request["service_code"] == "jalan_rusak"
    assert request["agency_responsible"] == "Dinas Pekerjaan Umum dan Penataan Ruang"
    assert request["description"] == REPORT["description"] and request["address_id"] == DESA
    assert (request["lat"], request["long"]) == (-7.7125, 110.0136)
    assert datetime.fromisoformat(request["expected_datetime"]) > datetime.fromisoformat(
        request["requested_datetime"]
    )
    (request_xml,) = spec.xml_items((await api.get(f"{V2}/requests/{other_code}.xml")).content, "requests")
    assert set(request_xml) == spec.REQUEST and request_xml["service_code"] == "sampah"
    assert request_xml["address"].startswith("Desa Harjobinangun, Kecamatan Grabag")

    # The list and its filters.
    async def listed(fmt: str = "json", **params: str) -> set[str]:
        answer = await api.get(f"{V2}/requests.{fmt}", params=params)
        assert answer.status_code == 200, answer.text
        if fmt == "xml":
            return {i["service_request_id"] for i in spec.xml_items(answer.content, "requests")}
        assert all(set(i) == spec.REQUEST for i in answer.json())
        return {i["service_request_id"] for i in answer.json()}

    assert await listed() == await listed("xml") == {code, other_code}
    assert await listed(service_code="jalan_rusak") == {code}
    assert await listed(service_code="jalan_rusak,sampah", status="open") == {code, other_code}
    assert await listed(status="closed") == set()
    assert await listed(service_request_id=f"{code},{other_code.lower()}") == {code, other_code}
    later = datetime.now(UTC) + timedelta(days=1)
    assert (
        await listed(start_date=later.isoformat(), end_date=(later + timedelta(days=5)).isoformat()) == set()
    )
    assert await listed(end_date=later.isoformat()) == {code, other_code}

    # An Open311 report is a complaint: the citizens' API follows it, its event says where
    # it came from, and the contact travels sealed.
    assert (await api.get(f"/complaints/{code}")).json()["status"] == "submitted"
    ((_, event),) = await published(infra.kafka_bootstrap, "complaints.events", 1, tracking_code=code)
    assert event["data"]["channel"] == "open311" and event["data"]["contact"] is not None
    assert email not in json.dumps(event) and NIK not in json.dumps(event)
    rows = await db_fetch(
        fresh_database, "SELECT tracking_code, key_id FROM open311_requests ORDER BY filed_at"
    )
    assert [(r["tracking_code"], str(r["key_id"])) for r in rows] == [
        (code, key["id"]),
        (other_code, key["id"]),
    ]


async def test_keys_are_kept_hashed_audited_and_refused_once_revoked(
    api: httpx.AsyncClient, fresh_database: str
) -> None:
    key = await issue_key(api)
    assert (
        set(key) >= {"id", "client", "prefix", "issued_at", "api_key"} and key["issued_by"] == "test-officer"
    )
    stored = await db_fetch(fresh_database, "SELECT key_hash, prefix FROM open311_keys")
    assert [dict(r) for r in stored] == [
        {"key_hash": hashlib.sha256(key["api_key"].encode()).hexdigest(), "prefix": key["api_key"][:11]}
    ]
    listed = (await api.get("/admin/open311/keys", headers=officer_headers("admin"))).json()
    assert [k["id"] for k in listed] == [key["id"]] and "api_key" not in listed[0]
    assert (await api.get("/admin/open311/keys", headers=officer_headers("coordinator"))).status_code == 403

    await filed(api, key["api_key"])
    revoked = await api.post(f"/admin/open311/keys/{key['id']}/revoke", headers=officer_headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "test-officer"
    assert errors_of(await post(api, key["api_key"]), 403) == [
        "api_key is unknown or revoked; ask the regency's administrator for one"
    ]
    missing = await api.post(f"/admin/open311/keys/{uuid.uuid4()}/revoke", headers=officer_headers("admin"))
    assert missing.status_code == 404

    audited = await db_fetch(
        fresh_database,
        "SELECT route, aggregates FROM audit_log WHERE route LIKE '/admin/open311/%' ORDER BY id",
    )
    assert [r["route"] for r in audited] == ["/admin/open311/keys", "/admin/open311/keys/{key_id}/revoke"]
    assert all(r["aggregates"] == [f"open311-key:{key['id']}"] for r in audited)


# ----- errors ----------------------------------------------------------------------------------


async def test_every_refusal_is_the_specifications_error_list(
    api: httpx.AsyncClient, fresh_database: str
) -> None:
    key = (await issue_key(api))["api_key"]
    assert "api_key is required" in errors_of(await post(api, None), 403)[0]
    assert "unknown or revoked" in errors_of(await post(api, "o311_" + "x" * 43, "xml"), 403)[0]

    # Bad input: 400, every field named.
    (placed,) = errors_of(await post(api, key, address_id=""), 400)
    assert placed.startswith("lat: lat/long alone cannot be placed in a desa/kelurahan")
    several = errors_of(
        await post(api, key, "xml", service_code="x", description="rusak", media_url="http://a/b"), 400
    )
    assert {d.split(":")[0] for d in several} == {"service_code", "description", "media_url"}
    assert errors_of(await post(api, key, lat="-6.2", long="106.8"), 400) == [
        "lat: lat/long is outside Kabupaten Purworejo"
    ]
    too_long = await api.get(
        f"{V2}/requests.json",
        params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
    )
    assert errors_of(too_long, 400) == ["end_date: start_date and end_date may span at most 90 days"]
    assert errors_of(await api.get(f"{V2}/requests.xml", params={"status": "pending"}), 400)
    assert errors_of(await api.get(f"{V2}/tokens/not-a-token.json"), 400)
    assert errors_of(await api.get(f"{V2}/services.yaml"), 400)

    # Nothing there: 404.
    assert errors_of(await api.get(f"{V2}/services/potholes.json"), 404)
    assert errors_of(await api.get(f"{V2}/requests/ADU-2612-AAAA-BBBB-CCCCC.xml"), 404)
    assert errors_of(await api.get(f"{V2}/tokens/{uuid.uuid4()}.json"), 404)

    assert await db_fetchval(fresh_database, "SELECT count(*) FROM complaints") == 0


async def test_filing_is_rate_limited_per_key_with_retry_after(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> None:
    limited = with_rule(
        platform.model_copy(update={"rate_limit_factor": 1.0}), "complaints.open311_filing", 2, 3600
    )
    async with running(complaints_app(fresh_database, limited)) as client:
        first, second = (
            (await issue_key(client, "App A"))["api_key"],
            (await issue_key(client, "App B"))["api_key"],
        )
        for _ in range(2):
            await filed(client, first)
        refused = await post(client, first, "xml")
        assert int(refused.headers["Retry-After"]) >= 1
        (description,) = errors_of(refused, 429)
        assert refused.headers["Retry-After"] in description
        await filed(client, second)  # another client application counts on its own
        documented = (await client.get("/openapi.json")).json()["paths"]
        open311_operations = [
            op for path, item in documented.items() if path.startswith(V2) for op in item.values()
        ]
        assert len(open311_operations) == 7
        assert all("Retry-After" in op["responses"]["429"]["headers"] for op in open311_operations)
        assert await db_fetchval(fresh_database, "SELECT count(*) FROM complaints") == 3


# ----- privacy ---------------------------------------------------------------------------------


async def test_confidential_and_anonymous_complaints_show_nothing_the_citizen_wrote(
    api: httpx.AsyncClient,
) -> None:
    key = (await issue_key(api))["api_key"]
    secret_text = "Pungutan liar oleh petugas loket kepada Ibu Sumiyati di balai desa"
    email = unique_email()
    contact = {"email": email, "phone": "081299887766", "first_name": "Sumiyati", "last_name": "Rahayu"}
    confidential = await filed(
        api,
        key,
        description=secret_text,
        **contact,
        **{"attribute[nik]": NIK, "attribute[confidential]": "true"},
    )
    anonymous = await filed(api, key, description=secret_text + " (anonim)", lat="-7.7311", long="110.0222")
    native = await api.post(
        "/complaints", json=complaint_body(description=secret_text + " (web)", confidential=True)
    )
    assert native.status_code == 201
    codes = {
        confidential["service_request_id"],
        anonymous["service_request_id"],
        native.json()["tracking_code"],
    }

    bodies = [
        await api.get(f"{V2}/requests.json"),
        await api.get(f"{V2}/requests.xml"),
        *[await api.get(f"{V2}/requests/{code}.{fmt}") for code in codes for fmt in ("json", "xml")],
    ]
    for answer in bodies:
        assert answer.status_code == 200
        text = answer.text
        for private in (secret_text, "Sumiyati", "Rahayu", email, "81299887766", NIK, "-7.7311", "110.0222"):
            assert private not in text, (private, text[:300])
    listed = {r["service_request_id"]: r for r in bodies[0].json()}
    assert set(listed) == codes
    assert all(r["description"] is None and r["lat"] is None for r in listed.values())


# ----- a client library, the documented examples -----------------------------------------------


@asynccontextmanager
async def on_a_port(app: Any) -> AsyncIterator[str]:
    """`app` (already started by `running`) also served on a real port, for clients that
    speak HTTP over the network."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, timeout=20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_an_open311_client_library_files_and_follows_a_report(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> None:
    """georeport (PyPI, Python 3) reads services, definitions and requests, in JSON and in
    XML; it has no POST or tokens, so those go as the specification shows them: a plain
    form-encoded POST and a GET of the token."""
    app = complaints_app(fresh_database, platform)
    async with running(app) as client, on_a_port(app) as base:
        key = (await issue_key(client))["api_key"]

        def session() -> dict[str, Any]:
            library = GeoReport(base + V2, api_key=key)
            xml_library = GeoReport(base + V2, api_key=key, output_format="xml")
            services = library.get_service_list()
            assert {s["service_code"] for s in services} == set(CATALOGUE.categories)
            assert {s["service_code"] for s in xml_library.get_service_list()} == set(CATALOGUE.categories)
            definition = library.get_service_definition("lampu_jalan")
            desa = next(a for a in definition["attributes"] if a["code"] == "desa")
            posted = requests.post(
                f"{base}{V2}/requests.json",
                data={
                    "api_key": library.api_key,
                    "service_code": "lampu_jalan",
                    "attribute[desa]": desa["values"][0]["key"],
                    "description": "Lampu jalan di perempatan desa mati sejak seminggu.",
                },
                timeout=30,
            )
            posted.raise_for_status()
            (answer,) = posted.json()
            code = answer["service_request_id"]
            token = requests.get(f"{base}{V2}/tokens/{answer['token']}.json", timeout=30).json()
            assert token == [{"service_request_id": code, "token": answer["token"]}]
            one = library.get_service_request(code)
            one_xml = xml_library.get_service_request(code)
            assert one["service_request_id"] == one_xml["service_request_id"] == code
            assert one["status"] == one_xml["status"] == "open"
            now = datetime.now(UTC)
            window = {
                "start_date": (now - timedelta(days=1)).isoformat(),
                "end_date": (now + timedelta(days=1)).isoformat(),
            }
            listed = library.get_service_requests(service_code="lampu_jalan", status="open", **window)
            assert [r["service_request_id"] for r in listed] == [code]
            assert library.get_service_requests(service_code="sampah") == []
            assert library.get_service_requests(service_request_id=code)[0]["service_code"] == "lampu_jalan"
            return one

        request = await asyncio.to_thread(session)
        assert request["address_id"] == "33.06.01.2001"  # the first desa of the list


def documented_curls() -> list[list[str]]:
    doc = (root() / "docs" / "open311.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", doc, flags=re.DOTALL)
    commands = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [shlex.split(c) for c in commands if c.startswith("curl ")]


def as_request(argv: list[str], values: dict[str, str]) -> dict[str, Any]:
    """A curl command line of the docs as httpx keyword arguments, its $VARIABLES given."""
    method, url, headers, data, raw = "GET", "", {}, [], None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, value = next(args).split(":", 1)
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data-urlencode"):
            field = next(args)
            if field.startswith("{"):
                raw = field
            else:
                data.append(tuple(field.split("=", 1)))
            method = "POST" if method == "GET" else method
        elif arg.startswith("-"):
            continue  # -s and the like
        else:
            url = arg

    def filled(text: str) -> str:
        return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: values[m.group(1)], text)

    return {
        "method": method,
        "url": re.sub(r"^https?://[^/]+", "", filled(url)),
        "headers": {k: filled(v) for k, v in headers.items()},
        **({"content": filled(raw)} if raw is not None else {"data": {k: filled(v) for k, v in data}}),
    }


async def test_the_documented_curl_examples_work_as_shown(api: httpx.AsyncClient) -> None:
    curls = documented_curls()
    assert len(curls) >= 8
    admin = officer_headers("admin")["Authorization"].removeprefix("Bearer ")
    values: dict[str, str] = {"ADMIN_TOKEN": admin}
    for argv in curls:
        request = as_request(argv, values)
        answer = await api.request(**request)
        assert answer.is_success, (argv, answer.status_code, answer.text[:300])
        body = answer.json() if answer.headers["content-type"] == "application/json" else {}
        if isinstance(body, dict) and "api_key" in body:
            values.update(API_KEY=body["api_key"], KEY_ID=body["id"])
        if isinstance(body, list) and body and "token" in body[0]:
            values.update(SERVICE_REQUEST_ID=body[0]["service_request_id"], TOKEN=body[0]["token"])
    assert {"API_KEY", "KEY_ID", "SERVICE_REQUEST_ID", "TOKEN"} <= set(values)


# ----- across services -------------------------------------------------------------------------


async def test_an_open311_report_reaches_the_notifications_and_the_view_like_a_native_one(
    wiring: Wiring,
) -> None:
    email = unique_email()
    view = await view_settings(
        wiring.infra, wiring.platform, await new_database(wiring.infra), "o311", topics=["complaints.events"]
    )
    complaints = complaints_app(await new_database(wiring.infra), wiring.platform)
    notifications = wiring.build()
    async with running(complaints) as c, running(notifications), running(build_view(view)) as v:
        asking_keys_of(notifications, complaints=c)
        key = (await issue_key(c))["api_key"]
        code = (await filed(c, key, email=email, **{"attribute[nik]": NIK}))["service_request_id"]

        mails = await wait_for(lambda: wiring.sink.messages_to(email), timeout=30)
        assert len(mails) == 1 and code in mails[0].subject

        async def tracked() -> dict[str, Any] | None:
            response = await v.get(f"/api/track/{code}")
            return response.json() if response.status_code == 200 else None

        assert (await wait_for(tracked, timeout=45))["status"] == "submitted"


# ----- the operator's commands -----------------------------------------------------------------


def operator(database: str, *command: str) -> str:
    """`python -m services.complaints <command>` as an operator runs it."""
    env = {**os.environ, "COMPLAINTS_DATABASE_URL": database}
    done = subprocess.run(
        [sys.executable, "-m", "services.complaints", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=root(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def test_the_operator_issues_lists_and_revokes_keys_from_the_command_line(
    api: httpx.AsyncClient, fresh_database: str
) -> None:
    issued = await asyncio.to_thread(operator, fresh_database, "issue-open311-key", "Kota Sehat App")
    key_id, secret = re.search(r"issued key (\S+) to Kota Sehat App.*\n(o311_\S+)", issued).groups()  # type: ignore[union-attr]
    await filed(api, secret)
    listed = await asyncio.to_thread(operator, fresh_database, "list-open311-keys")
    assert f"{key_id}  {secret[:11]}…  active " in listed and secret not in listed
    await asyncio.to_thread(operator, fresh_database, "revoke-open311-key", key_id)
    assert errors_of(await post(api, secret), 403)
    assert "revoked" in await asyncio.to_thread(operator, fresh_database, "list-open311-keys")
    issued_by = await db_fetchval(fresh_database, "SELECT revoked_by FROM open311_keys")
    assert issued_by == "operator (command line)"
