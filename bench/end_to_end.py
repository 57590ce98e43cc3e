"""Phase 4, end to end: from the 201 of POST /complaints to the complaint in the
integration view and its email in the SMTP sink, hop by hop."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import asyncpg
import httpx

from bench.brokers import BROKER_LABELS
from bench.events import topic_events
from bench.figures import ms
from bench.intake import COMPLAINT
from bench.openloop import open_loop, percentiles
from bench.services import ServiceProcess, consumer_env, fetch_rows, fresh_database
from shared.runtime.embedded import create_topics, free_port
from shared.runtime.select import Infrastructure

CODE_IN_MAIL = re.compile(rb"ADU-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}")
VIEW_POLL_SECONDS = 0.02
# The deployed default is 100 emails/s per instance (the regency relay's limit); here
# the sink takes anything, so the figure is the pipeline's latency, not the rate limit's
# queue (at 200 filings/s a 100/s limit would make the queue grow without end).
E2E_EMAIL_RATE = "2000"


async def end_to_end(infra: Infrastructure, rate: int, seconds: float) -> dict[str, Any]:
    """Time from the 201 of POST /complaints to (a) the complaint visible in the
    integration view's read model and (b) its acknowledgement email accepted by the
    SMTP sink. Requests come from the open-loop generator (its own process); the view
    is watched by polling its history table every 20 ms."""
    from shared.runtime.smtp_sink import SmtpSink

    sink = SmtpSink(port=free_port()).start()
    bootstrap = infra.broker_env()
    urls = {name: await fresh_database(infra) for name in ("complaints", "notifications", "integration")}
    ports = {name: free_port() for name in urls}
    groups = {name: f"bench-{name}-{uuid.uuid4().hex[:6]}" for name in ("notifications", "integration")}
    await create_topics(infra.kafka_bootstrap, {f"{g}.dlq": 1 for g in groups.values()})
    smtp = {
        "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "NOTIFICATIONS_SMTP_PORT": str(sink.port),
        "NOTIFICATIONS_EMAIL_RATE_PER_SECOND": E2E_EMAIL_RATE,
        "NOTIFICATIONS_EMAIL_BURST": E2E_EMAIL_RATE,
        # The citizens' data keys are asked of the complaints service on its bench port.
        "NOTIFICATIONS_DATA_KEY_URLS": json.dumps({"complaints": f"http://127.0.0.1:{ports['complaints']}"}),
    }
    services = {
        "complaints": ServiceProcess(
            "services.complaints",
            {
                **bootstrap,
                "COMPLAINTS_DATABASE_URL": urls["complaints"],
                "COMPLAINTS_PORT": str(ports["complaints"]),
            },
            ports["complaints"],
        ),
        **{
            name: ServiceProcess(
                f"services.{name}",
                {
                    **bootstrap,
                    **consumer_env(
                        name,
                        groups[name],
                        "complaints.events",
                        urls[name],
                        ports[name],
                        smtp if name == "notifications" else {},
                    ),
                },
                ports[name],
            )
            for name in groups
        },
    }
    view = await asyncpg.connect(urls["integration"])
    try:
        for service in services.values():
            await service.wait_ready()
        body = {**COMPLAINT, "reporter": {"nik": "3306061708900001", "email": "warga@example.com"}}
        url = f"http://127.0.0.1:{ports['complaints']}/complaints"
        # Warm up until both consumers have joined their groups and handled a complaint.
        async with httpx.AsyncClient(timeout=30) as client:
            (await client.post(url, json=body)).raise_for_status()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (  # noqa: ASYNC110 (polling other processes)
            await view.fetchval("SELECT count(*) FROM history") and sink.messages
        ):
            await asyncio.sleep(0.2)
        sink.clear()
        seen: dict[str, float] = {}
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_view(view, seen, stop))
        sampling = asyncio.create_task(services["notifications"].profile("e2e-notifications", seconds))
        result = await open_loop(url, rate, seconds, body, record="tracking_code")
        await sampling
        answered: dict[str, float] = result.pop("answered")
        # Let the pipeline finish what was accepted (bounded: a slow one is reported
        # with what arrived, and how much did not).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (  # noqa: ASYNC110 (polling other processes)
            len(answered.keys() - seen.keys()) or len(sink.messages) < len(answered)
        ):
            await asyncio.sleep(0.5)
        stop.set()
        await watcher
        mailed: dict[str, float] = {}
        for mail in sink.messages:
            found = CODE_IN_MAIL.search(mail.raw)
            if found:
                mailed.setdefault(found.group().decode(), mail.received_at.timestamp())
        view_ms = [(seen[c] - t) * 1000 for c, t in answered.items() if c in seen]
        mail_ms = [(mailed[c] - t) * 1000 for c, t in answered.items() if c in mailed]
        # Where the email's time goes: until the notification exists (relay, broker,
        # consumer) and from there to the sink (delivery worker, SMTP).
        rows = await fetch_rows(
            urls["notifications"],
            "SELECT tracking_code, extract(epoch FROM created_at) AS created,"
            " extract(epoch FROM delivered_at) AS delivered FROM notifications WHERE channel = 'email'",
        )
        created = {r["tracking_code"]: float(r["created"]) for r in rows}
        created_ms = [(created[c] - t) * 1000 for c, t in answered.items() if c in created]
        sending_ms = [(mailed[c] - created[c]) * 1000 for c in answered if c in created and c in mailed]
        hops = await _hops(infra.kafka_bootstrap, urls, groups, answered, {"view": seen, "email": mailed})
        return {
            "rate": rate,
            "seconds": seconds,
            "accepted": len(answered),
            "errors": result["errors"],
            "intake_p99_ms": result["p99_ms"],
            "view": {**percentiles(view_ms), "missing": len(answered) - len(view_ms)},
            "email": {**percentiles(mail_ms), "missing": len(answered) - len(mail_ms)},
            "email_parts": {
                "to_created": percentiles(created_ms),
                "created_to_sink": percentiles(sending_ms),
            },
            "hops": hops,
            "rss_mb": {name: round(s.rss_mb()) for name, s in services.items()},
        }
    finally:
        await view.close()
        for service in services.values():
            service.stop()
        sink.stop()


# Each hop of a filing's way, from the timestamps its rows and records carry (one
# machine, one clock): the 201; the record's timestamp, set when the relay hands it to
# the producer; the consumer's inbox row (`processed_at`: its batch transaction's
# start); for the email the notification's row (created in that batch, delivered_at).
# Measured from the 201 as the generator saw it: negative when the relay had the event
# before the answer reached the generator.
RELAY_HOP = "relay: 201 to the record handed to the producer (wake-up, read)"
HOPS = {
    "view": (
        (RELAY_HOP, "answered", "record"),
        ("broker: producer linger, the broker's append, the consumer's fetch wait", "record", "consumed"),
        (
            "the consumer's batch transaction, until the view shows it (polled every 20 ms)",
            "consumed",
            "arrived",
        ),
    ),
    "email": (
        (RELAY_HOP, "answered", "record"),
        ("broker: producer linger, the broker's append, the consumer's fetch wait", "record", "consumed"),
        ("delivery: batch transaction, the worker's claim (woken at commit), SMTP", "consumed", "arrived"),
    ),
}


async def _hops(
    bootstrap: str,
    urls: dict[str, str],
    groups: dict[str, str],
    answered: dict[str, float],
    arrived: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """Each path's hops (HOPS): percentiles of each and its share of the mean total
    (means add up where percentiles do not)."""
    filed = await fetch_rows(
        urls["complaints"], "SELECT event_id::text AS id, value FROM outbox WHERE event_type LIKE '%.filed.%'"
    )
    code_of = {r["id"]: json.loads(r["value"])["data"]["tracking_code"] for r in filed}
    record = {
        code_of[event["id"]]: at
        for event, at in await topic_events(bootstrap, "complaints.events")
        if event["id"] in code_of
    }
    found: dict[str, Any] = {}
    for path, consumer in (("view", "integration"), ("email", "notifications")):
        rows = await fetch_rows(
            urls[consumer], "SELECT event_id, extract(epoch FROM processed_at) AS at FROM inbox"
        )
        stamps = {
            "answered": answered,
            "record": record,
            "consumed": {code_of[r["event_id"]]: float(r["at"]) for r in rows if r["event_id"] in code_of},
            "arrived": arrived[path],
        }
        complete = [c for c in answered if all(c in s for s in stamps.values())]
        parts = [
            (name, [(stamps[end][c] - stamps[start][c]) * 1000 for c in complete])
            for name, start, end in HOPS[path]
        ]
        total = sum(sum(values) for _, values in parts) or 1.0
        found[path] = [
            {"hop": name, **percentiles(values), "mean_ms": sum(values) / len(values) if values else None,
             "share": sum(values) / total}
            for name, values in parts
        ]  # fmt: skip
    return found


def hop_lines(results: dict[str, Any]) -> list[str]:
    """The latest.md section: where a filing's time goes on its way to the view and the
    email, per broker."""
    lines = []
    for kind, found in (results.get("brokers") or {}).items():
        hops = (found.get("end_to_end") or {}).get("hops")
        if not hops:
            continue
        e2e = found["end_to_end"]
        lines += [
            f"## End to end, hop by hop ({BROKER_LABELS[kind]}, {e2e['rate']} req/s for {e2e['seconds']:.0f} s)",
            "",
            "| path | hop | mean | p50 | p99 | share of the mean total |",
            "|---|---|---|---|---|---|",
            *[
                f"| {path} | {h['hop']} | {ms(h.get('mean_ms'))} | {ms(h.get('p50_ms'))} | {ms(h.get('p99_ms'))} | "
                f"{h['share']:.0%} |"
                for path, parts in hops.items()
                for h in parts
            ],
            "",
        ]
    return lines


async def _watch_view(view: asyncpg.Connection, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Record when each code first appears in the view's history. One consumer applies
    batches one after another, so `seq` grows in commit order."""
    last = await view.fetchval("SELECT coalesce(max(seq), 0) FROM history")
    while not stop.is_set():
        rows = await view.fetch("SELECT seq, code FROM history WHERE seq > $1 ORDER BY seq", last)
        now = time.time()
        for row in rows:
            if row["code"]:
                seen.setdefault(row["code"], now)
            last = row["seq"]
        await asyncio.sleep(VIEW_POLL_SECONDS)
