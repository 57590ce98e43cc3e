"""The citizens' pages most asked for, under an open-loop load: the tracking page of a
complaint (GET /lacak?kode=…, the portal asking the complaints service) and Layanan saya
(GET /layanan, the portal asking the integration view for the citizen's services and the
notification service for their preferences, with the citizen session of a real sign-in:
a complaint filed with an email address, the one-time code from the SMTP sink).

The portal, complaints, notifications and the integration view run as their own
processes, as `make run` starts them. `python -m bench.run --only portal_pages` runs it
alone.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import httpx

from bench.intake import COMPLAINT
from bench.openloop import open_loop
from bench.services import ServiceProcess, fresh_database
from shared.runtime.embedded import create_topics, free_port
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink

PAGES_RATE = 100  # req/s, each page on its own
PAGES_P99_MS = 100
WARM_UP_RATE, WARM_UP_SECONDS = 20, 2.0
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CODE = re.compile(r"Kode verifikasi Sinergi Anda: (\d{6})\.")
NIK = "3306061708900031"
EMAIL = "warga-bench@example.com"
SERVICES = ("complaints", "notifications", "integration", "portal")


async def _until(check: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise RuntimeError(f"portal pages: {what} not within {timeout:.0f} s")


async def _sign_in(portal: httpx.AsyncClient, sink: SmtpSink) -> str:
    """Sign in to Layanan saya as a citizen does (contact and NIK, then the code the
    email brought); the session cookie."""
    await portal.get("/masuk", params={"untuk": "layanan"})
    page = await portal.get("/masuk/kontak")
    csrf = CSRF.search(page.text)
    if csrf is None:
        raise RuntimeError("portal pages: no CSRF token on the contact page")
    sent = await portal.post("/masuk/kontak", data={"csrf": csrf.group(1), "kontak": EMAIL, "nik": NIK})
    if sent.status_code != 303:
        raise RuntimeError(f"portal pages: the contact page answered {sent.status_code}")

    async def code() -> str | None:
        found = [m.group(1) for mail in sink.messages_to(EMAIL) if (m := CODE.search(mail.text))]
        return found[-1] if found else None

    verified = await portal.post(
        "/masuk/kode", data={"csrf": csrf.group(1), "kode": await _until(code, "the one-time code")}
    )
    if verified.status_code != 303:
        raise RuntimeError(f"portal pages: the code page answered {verified.status_code}")
    return portal.cookies["sesi"]


async def portal_pages(infra: Infrastructure, seconds: float, rate: int = PAGES_RATE) -> dict[str, Any]:
    """p50/p99 of the tracking page and of Layanan saya, each at `rate` for `seconds`,
    and the portal's CPU per page."""
    sink = SmtpSink(port=free_port()).start()
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    groups = {name: f"bench-pages-{name}-{uuid.uuid4().hex[:6]}" for name in ("notifications", "integration")}
    await create_topics(infra.kafka_bootstrap, {f"{g}.dlq": 1 for g in groups.values()})
    common = {**infra.broker_env(), "SINERGI_CITIZEN_ISSUER": urls["notifications"]}
    extra = {
        "notifications": {
            "NOTIFICATIONS_CONSUMER_GROUP": groups["notifications"],
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(sink.port),
            "NOTIFICATIONS_DATA_KEY_URLS": json.dumps({"complaints": urls["complaints"]}),
        },
        "integration": {"INTEGRATION_CONSUMER_GROUP": groups["integration"]},
        "portal": {f"PORTAL_{name.upper()}_URL": urls[name] for name in SERVICES if name != "portal"},
        "complaints": {},
    }
    services = {
        name: ServiceProcess(
            f"services.{name}",
            {
                **common,
                f"{name.upper()}_DATABASE_URL": await fresh_database(infra),
                f"{name.upper()}_PORT": str(ports[name]),
                **extra[name],
            },
            ports[name],
        )
        for name in SERVICES
    }
    try:
        for service in services.values():
            await service.wait_ready()
        async with httpx.AsyncClient(base_url=urls["complaints"], timeout=30) as complaints:
            body = {**COMPLAINT, "reporter": {"nik": NIK, "email": EMAIL}}
            filed = await complaints.post("/complaints", json=body)
            filed.raise_for_status()
        code = filed.json()["tracking_code"]
        async with httpx.AsyncClient(base_url=urls["portal"], timeout=30) as portal:
            cookie = await _sign_in(portal, sink)

            async def listed() -> bool:
                return code in (await portal.get("/layanan")).text

            await _until(listed, "the complaint in Layanan saya")
        headers = {"Cookie": f"sesi={cookie}"}
        pages = {"tracking": f"{urls['portal']}/lacak?kode={code}", "layanan": f"{urls['portal']}/layanan"}
        found: dict[str, Any] = {"rate": rate, "seconds": seconds}
        portal_process = services["portal"]
        for name, url in pages.items():
            await open_loop(url, WARM_UP_RATE, WARM_UP_SECONDS, {}, headers=headers, method="GET")
            cpu_before = portal_process.cpu_seconds()
            sampling = asyncio.create_task(portal_process.profile(f"portal-{name}", seconds))
            result = await open_loop(url, rate, seconds, {}, headers=headers, method="GET")
            await sampling
            found[name] = {
                "path": url.removeprefix(urls["portal"]).replace(code, "{code}"),
                **{k: result[k] for k in ("p50_ms", "p99_ms", "achieved_rps", "errors", "statuses")},
                "portal_cpu_ms_per_page": (portal_process.cpu_seconds() - cpu_before) * 1000 / result["ok"]
                if result["ok"]
                else None,
            }
        found["rss_mb"] = {name: round(s.rss_mb()) for name, s in services.items()}
        return found
    finally:
        for service in services.values():
            service.stop()
        sink.stop()


def portal_rows(found: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, result, target, verdict) of each page."""
    rows = []
    for name, label in (("tracking", "tracking page"), ("layanan", "Layanan saya")):
        x = found[name]
        p99, cpu = x.get("p99_ms"), x.get("portal_cpu_ms_per_page")
        failed = {status: n for status, n in (x.get("statuses") or {}).items() if status != "200"}
        misses = [f"{x['errors']} errors {failed or ''}".strip()] if x["errors"] else []
        if p99 is None or p99 > PAGES_P99_MS:
            misses.append(f"p99 over {PAGES_P99_MS} ms at {cpu or float('nan'):.2f} ms of portal CPU per page and "
                          "the services it asks, on 2 cores shared with the generator")  # fmt: skip
        rows.append(
            (f"Portal {label} (GET {x['path']}) at {found['rate']} req/s, p99",
             f"{p99:.1f} ms (p50 {x['p50_ms']:.1f} ms, errors {x['errors']}, "
             f"portal CPU {cpu or float('nan'):.2f} ms per page)",
             f"≤ {PAGES_P99_MS} ms, no errors", "met" if not misses else "MISSED: " + "; ".join(misses))
        )  # fmt: skip
    return rows
