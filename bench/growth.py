"""Phase 6, growth: intake latency and the integration view's rate with rows already in
the tables."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import asyncpg

from bench import profile as profiler
from bench.consumers import consume
from bench.intake import intake
from bench.profile import profiling
from bench.services import fresh_database
from bench.settings import ROOT, Scale
from shared.kit.db import connect, migrate
from shared.runtime.select import Infrastructure


async def _bulk_load_session(conn: asyncpg.Connection) -> None:
    """Generated rows are consistent by construction: skip the per-row foreign-key
    triggers and the wait for each commit's flush (the load is not what is measured)."""
    await conn.execute("SET session_replication_role = replica; SET synchronous_commit = off")


async def preload_complaints(url: str, rows: int) -> None:
    """Fill the complaints tables as if `rows` complaints had been filed over the past
    years: each with its history entry and its two SLA clocks (generated server-side)."""
    conn = await connect(url)
    try:
        await _bulk_load_session(conn)
        await conn.execute(
            """
            INSERT INTO complaints (id, tracking_code, kind, category, dimension, opd, title,
                description, desa_code, kecamatan_code, anonymous, confidential, status, filed_at,
                citizen_ref)
            SELECT gen_random_uuid(), 'ADU-0001-' || lpad(i::text, 15, '0'), 'pengaduan',
                'jalan_rusak', 'mobility', 'DPUPR', 'Jalan berlubang', 'Lubang besar di jalan desa.',
                '33.06.01.2001', '33.06.01', false, false,
                (ARRAY['submitted','verified','in_progress','resolved','closed'])[1 + i % 5],
                now() - make_interval(mins => i), 'cr1_' || md5(i::text)
            FROM generate_series(1, $1) AS i
            """,
            rows,
        )
        await conn.execute(
            "INSERT INTO complaint_history (complaint_id, at, action, status, actor)"
            " SELECT id, filed_at, 'filed', 'submitted', 'citizen' FROM complaints"
        )
        await conn.execute(
            "INSERT INTO sla_clocks (complaint_id, name, started_at, due_at, warn_at, stopped_at)"
            " SELECT id, clock, filed_at, filed_at + interval '5 days', filed_at + interval '4 days',"
            " CASE WHEN status IN ('resolved', 'closed') THEN filed_at + interval '3 days' END"
            " FROM complaints, unnest(ARRAY['verify', 'close']) AS clock"
        )
        await conn.execute("ANALYZE complaints, complaint_history, sla_clocks")
    finally:
        await conn.close()


async def preload_view(url: str, rows: int) -> None:
    """Fill the integration view's read model with `rows` items and `rows` history
    entries, as after years of events (generated server-side)."""
    conn = await connect(url)
    try:
        await _bulk_load_session(conn)
        await conn.execute(
            """
            INSERT INTO items (code, domain, aggregate, aggregate_id, status, phase, opd, category,
                dimension, desa_code, kecamatan_code, citizen_ref, opened_at, done_at,
                last_event_at, last_event_id, last_event_type)
            SELECT 'ADU-0001-' || lpad(i::text, 15, '0'), 'complaints', 'complaint', md5(i::text),
                CASE WHEN i % 3 = 0 THEN 'closed' ELSE 'in_progress' END,
                CASE WHEN i % 3 = 0 THEN 'done' ELSE 'open' END, 'DPUPR', 'jalan_rusak', 'mobility',
                '33.06.01.2001', '33.06.01', 'cr1_' || md5(i::text), now() - make_interval(mins => i),
                CASE WHEN i % 3 = 0 THEN now() - make_interval(mins => i) + interval '2 days' END,
                now() - make_interval(mins => i), md5(i::text), 'id.sinergi.complaints.complaint.filed.v1'
            FROM generate_series(1, $1) AS i
            """,
            rows,
        )
        await conn.execute(
            "INSERT INTO history (event_id, at, domain, event_type, aggregate, action, code, status,"
            " citizen_ref, opd, category, kecamatan_code, desa_code, dimension)"
            " SELECT last_event_id, last_event_at, domain, last_event_type, aggregate, 'filed', code,"
            " status, citizen_ref, opd, category, kecamatan_code, desa_code, dimension FROM items"
        )
        await conn.execute("ANALYZE items, history")
    finally:
        await conn.close()


async def growth(infra: Infrastructure, scale: Scale, topic: str) -> dict[str, list[dict[str, Any]]]:
    """Intake latency and the integration view's consumer rate with rows already in the
    tables. Both databases of a step are filled at once (PostgreSQL has a core each)."""
    points: dict[str, list[dict[str, Any]]] = {"intake": [], "integration": []}
    for rows in scale.growth_rows:
        started = time.perf_counter()
        complaints_db, view_db = await fresh_database(infra), await fresh_database(infra)
        await migrate(complaints_db, ROOT / "services" / "complaints" / "migrations")
        await migrate(view_db, ROOT / "services" / "integration" / "migrations")
        await asyncio.gather(preload_complaints(complaints_db, rows), preload_view(view_db, rows))
        print(f"  {rows:>9,} rows loaded in {time.perf_counter() - started:.0f} s", flush=True)
        # Its profile named after the step, not taken for the fresh intake's at that rate.
        with profiling(replace(profiler.active(), scope=f"growth-{rows}")):
            result = await intake(
                infra, (scale.growth_rate,), scale.rate_seconds, 0, database_url=complaints_db
            )
        run = result["runs"][0]
        points["intake"].append(
            {"rows": rows, "rate": scale.growth_rate, "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
             "errors": run["errors"], "achieved_rps": run["achieved_rps"],
             "cpu_ms_per_request": run["service_cpu_ms_per_request"]}
        )  # fmt: skip
        consumed = await consume(
            infra, "integration", topic, scale.growth_events, window=scale.growth_window,
            database_url=view_db,
        )  # fmt: skip
        points["integration"].append({"rows": rows, **consumed})
        print(f"  integration view with {rows:>9,} rows: {consumed['per_s']:,.0f} events/s", flush=True)
    return points
