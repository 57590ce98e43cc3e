"""The verifier's key cache, with the provider played by an in-memory HTTP transport (the
real provider is in tests/identity/): keys kept while the provider is down, an unknown
key id refetched at most once per interval, clock skew allowed only up to the leeway."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.kit.auth import InvalidToken, OidcTokens, ProviderUnavailable
from shared.kit.settings import PlatformSettings

ISSUER = "https://sso.example/realms/sinergi"


class FakeProvider:
    def __init__(self, *kids: str) -> None:
        self.keys: dict[str, Any] = {}
        self.up = True
        self.jwks_fetches = 0
        for kid in kids:
            self.add_key(kid)

    def add_key(self, kid: str) -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("provider down", request=request)
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs"})
        self.jwks_fetches += 1
        jwks = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return httpx.Response(200, json={"keys": jwks})

    def token(self, kid: str, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": "sinergi",
            "sub": "o-1",
            "roles": ["admin"],
            "iat": now,
            "exp": now + 300,
        }
        return jwt.encode({**body, **claims}, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> FakeProvider:
    """The provider every test starts from, signing with its one key `k1`."""
    return FakeProvider("k1")


async def started_verifier(provider: FakeProvider, **settings: Any) -> OidcTokens:
    """The kit's verifier of `provider`'s tokens, started (its first fetch of the keys done)."""
    platform = PlatformSettings(oidc_issuer=ISSUER, **{"oidc_jwks_refresh_seconds": 30.0, **settings})
    tokens = OidcTokens(platform, httpx.AsyncClient(transport=httpx.MockTransport(provider.handle)))
    await tokens.start()
    return tokens


async def test_keys_are_kept_while_the_provider_is_down_and_unknown_keys_refused(
    provider: FakeProvider,
) -> None:
    tokens = await started_verifier(provider, oidc_jwks_refresh_seconds=1)
    assert (await tokens.verify(provider.token("k1"))).roles == {"admin"}
    provider.up = False
    await asyncio.sleep(1.1)  # past the refetch limit: the next unknown key asks the provider
    assert (await tokens.verify(provider.token("k1"))).subject == "o-1"  # cached key
    provider.add_key("k2")
    with pytest.raises(InvalidToken):
        await tokens.verify(provider.token("k2"))
    assert tokens.state().startswith("degraded")


async def test_an_unknown_key_is_fetched_once_per_interval(provider: FakeProvider) -> None:
    tokens = await started_verifier(provider, oidc_jwks_refresh_seconds=3600)
    fetches = provider.jwks_fetches
    forged = FakeProvider("nobody")
    for _ in range(20):  # a flood of tokens with made-up key ids
        with pytest.raises(InvalidToken):
            await tokens.verify(forged.token("nobody"))
    assert provider.jwks_fetches == fetches  # within the interval of the start's fetch


async def test_without_any_key_the_answer_is_unavailable_not_invalid(provider: FakeProvider) -> None:
    provider.up = False
    tokens = await started_verifier(provider)
    with pytest.raises(ProviderUnavailable):
        await tokens.verify(provider.token("k1"))
    assert tokens.state().startswith("down")


async def test_clock_skew_is_allowed_only_within_the_leeway(provider: FakeProvider) -> None:
    tokens = await started_verifier(provider, oidc_leeway_seconds=60)
    now = int(time.time())
    assert await tokens.verify(provider.token("k1", iat=now + 30, exp=now + 330))
    with pytest.raises(InvalidToken):
        await tokens.verify(provider.token("k1", iat=now + 600, exp=now + 900))
    with pytest.raises(InvalidToken):  # longer than a shift
        await tokens.verify(provider.token("k1", iat=now, exp=now + 9 * 3600))
    with pytest.raises(InvalidToken):
        await tokens.verify(provider.token("k1", exp=now - 120))
