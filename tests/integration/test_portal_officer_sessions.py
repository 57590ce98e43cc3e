"""Officers' sessions in the portal's real database: a development sign-in makes one
(its tokens sealed, its cookie known only by a hash), each page keeps it alive until
the idle timeout, a busy officer's still ends at the absolute lifetime, the purge job
removes ended ones, and signing out ends it. Production never offers the development
sign-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import asyncpg
import pytest

from services.portal import handlers, petugas_cases
from services.portal.app import PortalSettings, build
from services.portal.app import _officers as officers_of
from services.portal.petugas_rules import SessionPolicy
from shared.kit.auth import DevelopmentTokens
from shared.kit.settings import DEV_AUTH_SECRET, PlatformSettings
from tests.integration.test_portal_drafts import pool, portal_context

__all__ = ["pool"]
POLICY = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=8))


def officers_context(pool: asyncpg.Pool, now: list[datetime]) -> handlers.Context:
    ctx = portal_context(pool, now)
    ctx.officers = handlers.OfficerAccess(
        provider=None,
        tokens=DevelopmentTokens(PlatformSettings()),
        policy=POLICY,
        public_url="http://127.0.0.1:8005",
        development_secret=DEV_AUTH_SECRET,
    )
    return ctx


async def test_a_session_lives_while_used_and_ends_idle_or_at_its_lifetime(pool: asyncpg.Pool) -> None:
    # The development tokens are checked against the real clock: sign in "now".
    now = [datetime.now(UTC)]
    ctx = officers_context(pool, now)
    cookie = await petugas_cases.sign_in_for_development(ctx, "opd_officer", "DPUPR", "Sri Lestari")
    signed = await petugas_cases.current(ctx, cookie)
    assert (signed.name, signed.opd, signed.role) == ("Sri Lestari", "DPUPR", "opd_officer")
    [row] = await pool.fetch("SELECT session_hash, tokens FROM officer_sessions")
    assert row["session_hash"] == handlers.session_key(cookie) != cookie
    assert signed.token not in row["tokens"]  # sealed under the cookie

    # A page every 29 minutes keeps it alive ...
    for _ in range(3):
        now[0] += timedelta(minutes=29)
        assert (await petugas_cases.current(ctx, cookie)).subject == signed.subject
    # ... 30 idle minutes end it, and the row goes.
    now[0] += timedelta(minutes=30)
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, cookie)
    assert await pool.fetchval("SELECT count(*) FROM officer_sessions") == 0

    # Busy all shift, it still ends at its absolute lifetime.
    now[0] = datetime.now(UTC)
    cookie = await petugas_cases.sign_in_for_development(ctx, "coordinator", None, "Budi")
    began = now[0]
    while now[0] + timedelta(minutes=20) < began + POLICY.lifetime:
        now[0] += timedelta(minutes=20)
        await petugas_cases.current(ctx, cookie)
    now[0] = began + POLICY.lifetime
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, cookie)

    # Another cookie, or none, is no session.
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, "b" * 43)
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, None)


async def test_the_purge_job_and_signing_out_end_sessions(pool: asyncpg.Pool) -> None:
    now = [datetime.now(UTC)]
    ctx = officers_context(pool, now)
    kept = await petugas_cases.sign_in_for_development(ctx, "coordinator", None, "Ani")
    left = await petugas_cases.sign_in_for_development(ctx, "coordinator", None, "Eko")
    now[0] += timedelta(minutes=20)
    await petugas_cases.current(ctx, kept)
    now[0] += timedelta(minutes=15)  # `left` idle 35 minutes, `kept` 15
    assert await petugas_cases.purge_ended_sessions(ctx) == 1
    assert (await petugas_cases.current(ctx, kept)).name == "Ani"
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, left)
    # Without a provider there is no provider session to end.
    assert await petugas_cases.sign_out(ctx, kept, "http://127.0.0.1:8005/petugas/keluar/selesai") is None
    assert await pool.fetchval("SELECT count(*) FROM officer_sessions") == 0


def test_production_offers_no_development_sign_in() -> None:
    production = PlatformSettings(
        environment="production",
        oidc_issuer="https://sso.purworejokab.go.id/realms/sinergi",
        citizen_ref_key="k" * 40,
    )
    with pytest.raises(RuntimeError, match="PORTAL_OIDC_CLIENT_SECRET"):
        build(PortalSettings(platform=production, secret_key="s" * 40))
    settings = PortalSettings(platform=production, secret_key="s" * 40, oidc_client_secret="c" * 40)
    build(settings)  # starts, with the provider only:
    access = officers_of(settings, SimpleNamespace(tokens=DevelopmentTokens(PlatformSettings())))  # type: ignore[arg-type]
    assert access.provider is not None and access.development_secret is None
    ctx = portal_context(None, [datetime.now(UTC)])  # type: ignore[arg-type]
    ctx.officers = access
    assert not petugas_cases.development_sign_in(ctx)
    # Without an issuer, production does not start at all (the kit's rule).
    with pytest.raises(RuntimeError):
        build(
            PortalSettings(
                platform=production.model_copy(update={"oidc_issuer": None}),
                secret_key="s" * 40,
                oidc_client_secret="c" * 40,
            )
        )
