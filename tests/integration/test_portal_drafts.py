"""The portal's drafts in its real database: kept while the citizen goes on, gone after
the idle expiry (by reading and by the purge job), known by a hash of the cookie."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from services.portal import handlers
from services.portal.clients.complaints import ComplaintsClient
from services.portal.clients.health import HealthClient
from services.portal.clients.integration import IntegrationClient
from services.portal.clients.notifications import NotificationsClient
from services.portal.clients.permits import PermitsClient
from tests.harness import migrated_pool_fixture

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "portal" / "migrations"
pool = migrated_pool_fixture(MIGRATIONS)
NOWHERE = "http://127.0.0.1:9"  # drafts need no upstream service
SESSION = "a" * 43


def portal_context(pool: asyncpg.Pool, now: list[datetime]) -> handlers.Context:
    """The portal's use cases on `pool`, at the time `now[0]` says, with no upstream."""
    return handlers.Context(
        pool=lambda: pool,
        complaints=ComplaintsClient(NOWHERE, 1),
        permits=PermitsClient(NOWHERE, 1),
        health=HealthClient(NOWHERE, 1),
        clock=lambda: now[0],
        draft_idle=timedelta(minutes=120),
        notifications=NotificationsClient(NOWHERE, 1),
        integration=IntegrationClient(NOWHERE, 1),
    )


async def test_a_draft_lasts_while_used_and_goes_after_being_idle(pool: asyncpg.Pool) -> None:
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    ctx = portal_context(pool, now)
    _, answer = await handlers.answer(ctx, SESSION, "jenis", {"jenis": "aspirasi"})
    assert not answer.errors
    stored = await pool.fetch("SELECT session_hash, answers FROM drafts")
    assert [dict(r["answers"]) for r in stored] == [{"jenis": "aspirasi"}]
    assert stored[0]["session_hash"] == handlers.session_key(SESSION) != SESSION

    # Each answer keeps the draft alive.
    now[0] += timedelta(minutes=119)
    await handlers.answer(
        ctx, SESSION, "isi", {"judul": "Taman bermain", "uraian": "Usul taman bermain baru."}
    )
    now[0] += timedelta(minutes=119)
    assert (await handlers.draft(ctx, SESSION))["jenis"] == "aspirasi"
    assert await handlers.purge_idle_drafts(ctx) == 0

    # Idle past the expiry: not read any more, then deleted.
    now[0] += timedelta(minutes=2)
    assert await handlers.draft(ctx, SESSION) == {}
    assert await handlers.purge_idle_drafts(ctx) == 1
    assert await pool.fetchval("SELECT count(*) FROM drafts") == 0
    for upstream in ctx.upstreams:
        await upstream.close()
