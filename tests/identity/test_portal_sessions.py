"""The officers' workspace against the real provider (the suite's Keycloak, the realm's
`sinergi-petugas` client), through the portal's use cases on its real database: a
sign-in through the login page with the portal's state, nonce and PKCE verifier makes
a session; its access token is renewed before it expires, once for two pages asking at
the same moment (Keycloak takes each refresh token once); a session the provider ended
(the officer signed out everywhere by an administrator) ends at the next renewal; a
return with another sign-in's state makes no session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from services.portal import handlers, petugas_cases
from services.portal.clients.identity import IdentityProvider
from services.portal.petugas_rules import SessionPolicy
from shared.kit.auth import OidcTokens
from shared.kit.settings import PlatformSettings
from shared.runtime.keycloak import authorization_code
from tests.identity_support import PASSWORD, Provider
from tests.integration.test_portal_drafts import pool, portal_context

__all__ = ["pool"]
BROWSER = "c" * 43  # the browser's own cookie (`sesi`), under which a sign-in waits


@pytest.fixture
async def access(provider: Provider, platform: PlatformSettings) -> AsyncIterator[handlers.OfficerAccess]:
    tokens = OidcTokens(platform.model_copy(update={"oidc_issuer": provider.issuer}))
    await tokens.start()
    identity = IdentityProvider(
        issuer=provider.issuer,
        discovery=None,
        client_id="sinergi-petugas",
        client_secret=provider.keycloak.client_secret,
        redirect_uri=f"{provider.keycloak.portal_url}/petugas/masuk/kembali",
        timeout=10,
    )
    yield handlers.OfficerAccess(identity, tokens, SessionPolicy(), provider.keycloak.portal_url)
    await identity.close()
    await tokens.close()


async def signed_in(ctx: handlers.Context, username: str) -> str:
    """The portal's sign-in from its start to the provider's redirect back: the cookie."""
    address = await petugas_cases.begin(ctx, BROWSER, "/petugas/aduan")
    query = parse_qs(urlsplit(address).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["sinergi-petugas"]
    code, state = await asyncio.to_thread(authorization_code, address, username, PASSWORD)
    cookie, then = await petugas_cases.finish(ctx, BROWSER, code, state)
    assert then == "/petugas/aduan"
    return cookie


async def test_a_session_renews_its_token_once_and_ends_when_the_provider_ends_it(
    provider: Provider, access: handlers.OfficerAccess, pool: asyncpg.Pool
) -> None:
    now = [datetime.now(UTC)]
    ctx = portal_context(pool, now)
    ctx.officers = access
    cookie = await signed_in(ctx, "koordinator")
    first = await petugas_cases.current(ctx, cookie)
    assert first.subject == provider.subjects["koordinator"] and first.role == "coordinator"
    assert (await petugas_cases.current(ctx, cookie)).token == first.token  # not due yet

    # Four and a half minutes on (the realm's tokens live five), two pages at once: the
    # token is renewed once and both pages get the new one, which the services accept.
    now[0] += timedelta(minutes=4, seconds=30)
    pages = await asyncio.gather(petugas_cases.current(ctx, cookie), petugas_cases.current(ctx, cookie))
    assert pages[0].token == pages[1].token != first.token
    assert (await access.tokens.verify(pages[0].token)).subject == first.subject

    # An administrator signs the officer out everywhere: the next renewal is refused and
    # the session is over.
    await asyncio.to_thread(provider.keycloak.sign_out_everywhere, first.subject)
    now[0] += timedelta(minutes=4, seconds=30)
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, cookie)
    assert await pool.fetchval("SELECT count(*) FROM officer_sessions") == 0


async def test_signing_out_names_the_providers_end_session_and_a_stale_return_is_refused(
    provider: Provider, access: handlers.OfficerAccess, pool: asyncpg.Pool
) -> None:
    ctx = portal_context(pool, [datetime.now(UTC)])
    ctx.officers = access
    cookie = await signed_in(ctx, "opd-dpupr")
    assert (await petugas_cases.current(ctx, cookie)).opd == "DPUPR"
    after = f"{provider.keycloak.portal_url}/petugas/keluar/selesai"
    logout = await petugas_cases.sign_out(ctx, cookie, after)
    assert logout is not None and logout.startswith(f"{provider.issuer}/protocol/openid-connect/logout?")
    query = parse_qs(urlsplit(logout).query)
    assert query["post_logout_redirect_uri"] == [after] and query["id_token_hint"]
    with pytest.raises(petugas_cases.SignInNeeded):
        await petugas_cases.current(ctx, cookie)

    # The provider's redirect of a sign-in this browser did not start (or started and
    # finished already) makes no session, whatever the code.
    address = await petugas_cases.begin(ctx, BROWSER, None)
    code, state = await asyncio.to_thread(authorization_code, address, "opd-dpupr", PASSWORD)
    with pytest.raises(petugas_cases.SignInFailed):
        await petugas_cases.finish(ctx, "d" * 43, code, state)
    with pytest.raises(petugas_cases.SignInFailed):
        await petugas_cases.finish(ctx, BROWSER, code, state + "x")
    assert await pool.fetchval("SELECT count(*) FROM officer_sessions") == 0
