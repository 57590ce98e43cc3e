"""The portal's drafts per journey in its real database: a citizen halfway through Lapor
and Antrean and signed in with a one-time code keeps all three; filing the complaint
deletes its draft only, signing out the sign-in only, and an expired citizen session is
not used even while its draft is fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from services.portal import antrean_cases, repository
from services.portal.antrean_rules import ANTREAN, MASUK
from services.portal.domain import LAPOR, Draft
from services.portal.handlers import session_key
from tests.harness import migrated_pool_fixture
from tests.integration.test_portal_drafts import SESSION, portal_context

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "portal" / "migrations"
pool = migrated_pool_fixture(MIGRATIONS)


async def test_each_journey_keeps_its_own_draft_and_a_session_ends_with_its_expiry(
    pool: asyncpg.Pool,
) -> None:
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    ctx = portal_context(pool, now)
    key = session_key(SESSION)
    expires = now[0] + timedelta(minutes=30)
    await repository.save(pool, key, LAPOR, {"jenis": "aspirasi"}, now[0])
    await repository.save(pool, key, ANTREAN, {"fasilitas": "RSUD-TJITRO"}, now[0])
    signin = Draft(kontak="+6281234567890")
    await antrean_cases.keep_session(ctx, SESSION, signin, "token", expires, "3306061708900001")
    # Sealed under the cookie: the table alone gives nobody the session.
    kept = await pool.fetchval("SELECT answers FROM drafts WHERE journey = $1", MASUK)
    assert "token" not in kept["session"]
    assert antrean_cases.unseal(kept["session"], "b" * 43) is None  # another cookie's key
    assert antrean_cases.unseal(kept["session"], SESSION) == "token"

    assert (await antrean_cases.stored(ctx, SESSION, ANTREAN))["fasilitas"] == "RSUD-TJITRO"
    assert await antrean_cases.session_of(ctx, SESSION) == "token"
    # The complaint filed: only Lapor's draft goes.
    await repository.delete(pool, key, LAPOR)
    journeys = await pool.fetch("SELECT journey FROM drafts ORDER BY journey")
    assert [r["journey"] for r in journeys] == [ANTREAN, MASUK]

    # Past the session's own expiry (well before the draft's idle limit): not used.
    now[0] = expires
    assert await antrean_cases.session_of(ctx, SESSION) is None
    assert await antrean_cases.signed_in(ctx, SESSION) is None

    await antrean_cases.sign_out(ctx, SESSION)
    assert [r["journey"] for r in await pool.fetch("SELECT journey FROM drafts")] == [ANTREAN]
    for upstream in ctx.upstreams:
        await upstream.close()
