"""A service trusts the regency's identity provider and nothing else: officers' access
tokens from Keycloak's real token endpoint are accepted for their roles; expired,
foreign, forged and downgraded tokens are refused with the same 401; a rotated key is
picked up without a restart; a provider that is down makes officer routes 503, never
500, while citizens are still served; one lost mid-run leaves the keys already fetched
working and refuses tokens of keys it never published."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from services.complaints.app import ComplaintsSettings, build
from shared.kit.auth import issue_token
from shared.kit.data_keys import DATA_KEYS_PATH, TEXT_KEYS_PATH, TEXT_READER, KeyReaderToken
from shared.kit.settings import DEV_AUTH_SECRET, PlatformSettings
from shared.runtime.embedded import free_port
from shared.runtime.keycloak import password_grant
from tests.harness import db_fetchval, running
from tests.identity_support import PASSWORD, Provider, ProviderLine
from tests.integration.test_complaints_service import complaint_body

AUDIT = "/admin/audit"
GENERIC_401 = {"detail": "invalid or expired token"}


def audience_mapper() -> dict[str, object]:
    return {
        "name": "audience sinergi",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {"included.custom.audience": "sinergi", "access.token.claim": "true"},
    }


def password_client(
    client_id: str, *, audience: bool, attributes: dict[str, str] | None = None
) -> dict[str, object]:
    """A client that hands out tokens by password (for these tests only)."""
    return {
        "clientId": client_id,
        "publicClient": True,
        "directAccessGrantsEnabled": True,
        "standardFlowEnabled": False,
        "attributes": attributes or {},
        "protocolMappers": [audience_mapper()] if audience else [],
    }


@pytest.fixture(scope="module")
def clients(provider: Provider) -> Provider:
    kc = provider.keycloak
    kc.add_client(password_client("uji-audiens-lain", audience=False))
    kc.add_client(password_client("uji-singkat", audience=True, attributes={"access.token.lifespan": "1"}))
    kc.add_client(password_client("uji-issuer", audience=True))
    kc.add_client(
        password_client("uji-es256", audience=True, attributes={"access.token.signed.response.alg": "ES256"})
    )
    return provider


@asynccontextmanager
async def complaints(
    platform: PlatformSettings, database_url: str, **oidc: object
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ComplaintsSettings(
        database_url=database_url,
        platform=platform.model_copy(update={"oidc_jwks_refresh_seconds": 1.0, **oidc}),
        sla_check_seconds=3600,
    )
    async with running(build(settings)) as client:
        yield client


def forged(token: str, *, header: dict[str, object] | None = None, signature: str | None = None) -> str:
    head, payload, sig = token.split(".")
    if header is not None:
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{head}.{payload}.{sig if signature is None else signature}"


async def test_officers_tokens_from_the_provider_are_accepted_for_their_roles(
    provider: Provider, platform: PlatformSettings, fresh_database: str
) -> None:
    async with complaints(platform, fresh_database, oidc_issuer=provider.issuer) as client:
        assert (await client.get(AUDIT, headers=provider.headers("admin-diskominfo"))).status_code == 200
        for officer in ("koordinator", "opd-dpupr", "petugas-rsud", "petugas-notifikasi"):
            refused = await client.get(AUDIT, headers=provider.headers(officer))
            assert refused.status_code == 403, (officer, refused.text)
        code = (await client.post("/complaints", json=complaint_body())).json()["tracking_code"]
        verified = await client.post(
            f"/officer/complaints/{code}/verify", headers=provider.headers("koordinator")
        )
        assert verified.status_code == 200, verified.text
        trail = (await client.get(AUDIT, headers=provider.headers("admin-diskominfo"))).json()
        assert trail[0]["subject"] == provider.subjects["koordinator"] and trail[0]["role"] == "coordinator"
        ready = (await client.get("/ready")).json()
        assert ready["checks"]["identity"] == "up"


async def test_expired_foreign_forged_and_downgraded_tokens_get_the_same_401(
    clients: Provider, platform: PlatformSettings, fresh_database: str
) -> None:
    kc = clients.keycloak
    valid = clients.token("admin-diskominfo")
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(f"{clients.issuer}/protocol/openid-connect/certs")).json()
    rsa = next(k for k in jwks["keys"] if k["alg"] == "RS256" and k.get("use", "sig") == "sig")
    public_pem = jwt.PyJWK(rsa).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(valid, options={"verify_signature": False})
    short_lived = password_grant(kc, "uji-singkat", "admin-diskominfo", PASSWORD)
    cases = {
        "expired": short_lived,
        "another audience": password_grant(kc, "uji-audiens-lain", "admin-diskominfo", PASSWORD),
        "another issuer": password_grant(kc, "uji-issuer", "admin-diskominfo", PASSWORD, host="localhost"),
        "unknown key id": forged(
            valid, header={"alg": "RS256", "typ": "JWT", "kid": "not-a-key-of-the-realm"}
        ),
        "alg none": forged(valid, header={"alg": "none", "typ": "JWT"}, signature=""),
        "HS256 keyed with the public key": _hs256_with(claims, public_pem, rsa["kid"]),
        "signature of another token": forged(valid, signature=clients.token("koordinator").split(".")[2]),
        "development token": issue_token(DEV_AUTH_SECRET, subject="dev", role="admin"),
        "garbage": "not.a.token",
        "oversized": valid + "A" * 9000,
    }
    await asyncio.sleep(2)  # the short-lived token expires (no clock skew allowed below)
    async with complaints(
        platform, fresh_database, oidc_issuer=clients.issuer, oidc_leeway_seconds=0
    ) as client:
        assert (await client.get(AUDIT, headers={"Authorization": f"Bearer {valid}"})).status_code == 200
        for case, token in cases.items():
            answer = await client.get(AUDIT, headers={"Authorization": f"Bearer {token}"})
            assert (answer.status_code, answer.json()) == (401, GENERIC_401), case
            assert answer.headers["www-authenticate"] == "Bearer", case


def _hs256_with(claims: dict[str, object], secret: bytes, kid: str) -> str:
    """The classic downgrade: an HS256 token whose "secret" is the provider's public key.
    PyJWT refuses to use a PEM key as an HMAC secret, so the token is built by hand."""
    import hashlib
    import hmac

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def test_an_es256_token_of_the_provider_is_accepted(
    clients: Provider, platform: PlatformSettings, fresh_database: str
) -> None:
    clients.keycloak.rotate_keys("ES256")  # the realm's first elliptic-curve key
    token = password_grant(clients.keycloak, "uji-es256", "admin-diskominfo", PASSWORD)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    async with complaints(platform, fresh_database, oidc_issuer=clients.issuer) as client:
        assert (await client.get(AUDIT, headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_a_rotated_key_is_picked_up_without_a_restart(
    provider: Provider, platform: PlatformSettings, fresh_database: str
) -> None:
    async with complaints(platform, fresh_database, oidc_issuer=provider.issuer) as client:
        before = provider.token("admin-diskominfo")
        assert (await client.get(AUDIT, headers={"Authorization": f"Bearer {before}"})).status_code == 200
        provider.keycloak.rotate_keys("RS256")
        after = provider.token("admin-diskominfo")
        assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
        await asyncio.sleep(1.1)  # the refetch limit of this test's service
        assert (await client.get(AUDIT, headers={"Authorization": f"Bearer {after}"})).status_code == 200
        assert (await client.get(AUDIT, headers={"Authorization": f"Bearer {before}"})).status_code == 200


async def test_a_provider_that_is_down_makes_officer_routes_503_and_citizens_are_served(
    platform: PlatformSettings, fresh_database: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/realms/sinergi"
    async with complaints(platform, fresh_database, oidc_issuer=nowhere) as client:
        assert (await client.post("/complaints", json=complaint_body())).status_code == 201
        ready = (await client.get("/ready")).json()
        assert ready["checks"]["identity"].startswith("down: identity provider unreachable")
        answer = await client.get(AUDIT, headers={"Authorization": "Bearer a.b.c"})
        assert answer.status_code == 401  # not even a token: refused before asking the provider
        token = forged(
            issue_token(DEV_AUTH_SECRET, subject="x", role="admin"), header={"alg": "RS256", "kid": "k"}
        )
        answer = await client.get(AUDIT, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "10"


async def test_a_provider_lost_mid_run_keeps_known_keys_and_refuses_unknown_ones(
    clients: Provider, platform: PlatformSettings, fresh_database: str
) -> None:
    line = ProviderLine(clients.keycloak.port)
    await line.mend()
    try:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{line.issuer}/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "uji-issuer",
                    "username": "admin-diskominfo",
                    "password": PASSWORD,
                },
            )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        unknown_key = forged(token, header={**jwt.get_unverified_header(token), "kid": "kunci-tak-dikenal"})
        async with complaints(platform, fresh_database, oidc_issuer=line.issuer) as client:
            assert (await client.get(AUDIT, headers=headers)).status_code == 200
            assert (await client.get("/ready")).json()["checks"]["identity"] == "up"

            await line.cut()
            assert (await client.get(AUDIT, headers=headers)).status_code == 200  # cached keys
            await asyncio.sleep(1.1)  # an unknown key id may make the service ask again now
            refused = await client.get(AUDIT, headers={"Authorization": f"Bearer {unknown_key}"})
            assert refused.status_code == 401 and refused.json() == GENERIC_401
            ready = (await client.get("/ready")).json()["checks"]["identity"]
            assert ready.startswith("degraded: identity provider unreachable"), ready
            assert (await client.post("/complaints", json=complaint_body())).status_code == 201

            await line.mend()
            await asyncio.sleep(1.1)  # the refetch limit of this test's service
            refused = await client.get(AUDIT, headers={"Authorization": f"Bearer {unknown_key}"})
            assert refused.status_code == 401
            assert (await client.get("/ready")).json()["checks"]["identity"] == "up"
            assert (await client.get(AUDIT, headers=headers)).status_code == 200
    finally:
        if line.port and line._server is not None:
            await line.cut()


async def test_each_service_account_reads_only_the_keys_its_machine_role_allows(
    provider: Provider, platform: PlatformSettings, fresh_database: str
) -> None:
    """The realm's service accounts, by client credentials at the real token endpoint: the
    notification service's reads citizens' data keys (contacts) and no text key; the
    integration view's reads text keys (what citizens wrote) and no data key."""
    oidc = platform.model_copy(update={"oidc_issuer": provider.issuer})
    kc = provider.keycloak
    accounts = {
        "notifications": KeyReaderToken(oidc, "sinergi-notifications", SecretStr(kc.key_reader_secret)),
        "integration": KeyReaderToken(
            oidc, "sinergi-integration", SecretStr(kc.text_reader_secret), role=TEXT_READER
        ),
    }
    allowed = {"notifications": DATA_KEYS_PATH, "integration": TEXT_KEYS_PATH}
    async with complaints(platform, fresh_database, oidc_issuer=provider.issuer) as client:
        body = complaint_body(reporter={"nik": "3306061708900001", "phone": "081234567890"})
        assert (await client.post("/complaints", json=body)).status_code == 201
        key_id = await db_fetchval(fresh_database, "SELECT key_id FROM citizen_keys")
        for account, token in accounts.items():
            headers = {"Authorization": f"Bearer {await token()}"}
            for path in (DATA_KEYS_PATH, TEXT_KEYS_PATH):
                answer = await client.get(f"{path}/{key_id}", headers=headers)
                assert answer.status_code == (200 if path == allowed[account] else 403), (account, path)
            await token.close()
