"""Citizen sessions: a short-lived token a citizen gets for proving a contact with a
one-time code (the notification service issues it: POST /citizen/codes, then
POST /citizen/sessions), verifiable by every service.

The token is a JWT signed ES256 with the notification service's private key; the public
key is published at ``<issuer>/.well-known/jwks.json`` (named by the issuer's
``/.well-known/openid-configuration``). Claims: ``iss`` (SINERGI_CITIZEN_ISSUER),
``aud`` ``sinergi-citizen``, ``sub`` the keyed hash of the verified contact
(`privacy.contact_ref`), ``kind`` (phone or email), ``iat``/``exp`` and, when the citizen
stated their NIK, ``citizen_ref``. No contact, NIK or code is in it.

A route that needs a verified citizen takes `CitizenSession`; a missing, forged, expired
or foreign session (another key, another deployment's issuer or audience) gets the same
401. Keys are fetched and cached as officers' keys are (auth.OidcTokens): an unknown key
id refetches at most once per SINERGI_OIDC_JWKS_REFRESH_SECONDS. The session is read from
the Authorization header without an OpenAPI security scheme, which in Sinergi marks
officers' operations (docs/access.yaml).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, HTTPException, Request, status
from jwt.algorithms import ECAlgorithm
from pydantic import SecretStr

from shared.kit.auth import (
    MAX_TOKEN_BYTES,
    InvalidToken,
    OidcTokens,
    key_id_of,
    verified,
)
from shared.kit.privacy import CONTACT_REF_PREFIX
from shared.kit.settings import PlatformSettings
from shared.schemas.common import CITIZEN_REF_PATTERN

log = logging.getLogger(__name__)

AUDIENCE = "sinergi-citizen"
KINDS = ("phone", "email")
ALGORITHM = "ES256"
MAX_SESSION_MINUTES = 60  # a session is for one errand; a longer token is refused
# Development only (a published key: anyone could sign sessions with it); production
# refuses to start with it (`signing_key_pem`).
DEV_SIGNING_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnYr2PImg0q3jBPWr
emZqM11FSlZw8Gm/nPB/Ple64MOhRANCAASjgAIUOt54G6fZ/wSDpZ8Cu0SeLCVS
16QgJgp8WzUlcqFZLvEdVC19HODTjInYpSv94EiCldpHacujfQQHVSzG
-----END PRIVATE KEY-----
"""
_CONTACT_REF = re.compile(rf"^{CONTACT_REF_PREFIX}[0-9a-f]{{32}}$")
_CITIZEN_REF = re.compile(CITIZEN_REF_PATTERN)
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="citizen"'}


@dataclass(frozen=True)
class Citizen:
    """Who a valid session says the caller is."""

    contact_ref: str  # keyed hash of the verified phone number or email address
    kind: str  # phone | email
    citizen_ref: str | None  # the stated NIK's citizen reference, if one was stated
    expires_at: int  # seconds since the epoch


def signing_key_pem(configured: SecretStr | None, platform: PlatformSettings) -> str:
    """The private key sessions are signed with: the configured one, or in development
    the published development key; production refuses to start without its own."""
    pem = configured.get_secret_value() if configured else None
    if platform.environment == "production" and (not pem or pem.strip() == DEV_SIGNING_KEY.strip()):
        raise RuntimeError(
            "refusing to start in production without NOTIFICATIONS_CITIZEN_SIGNING_KEY "
            "(32 random bytes in hex, or an EC P-256 private key in PEM; not the development key)"
        )
    return pem or DEV_SIGNING_KEY


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, or from 32 random bytes in hex (`openssl rand -hex
    32`, as the deployment makes every key): they are the key's private scalar."""
    text = text.strip()
    if _HEX_KEY.match(text):
        return ec.derive_private_key(int(text, 16), ec.SECP256R1())
    key = serialization.load_pem_private_key(text.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the citizen session key must be an EC P-256 private key (ES256)")
    return key


class SessionSigner:
    """Issues sessions with an EC P-256 private key and publishes its public half."""

    def __init__(self, private_key: str, issuer: str) -> None:
        key = _private_key(private_key)
        self._key = key
        self.issuer = issuer.rstrip("/")
        public: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        # RFC 7638 thumbprint: the key id changes when the key does, so verifiers refetch.
        canonical = json.dumps({k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())
        self._jwk = {**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def issue(
        self, *, contact_ref: str, kind: str, citizen_ref: str | None, now: int, minutes: float
    ) -> tuple[str, int]:
        """A signed session and its expiry (seconds since the epoch). `now` is the wall
        clock: every service checks the expiry against its own."""
        expires = now + int(minutes * 60)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": contact_ref,
            "kind": kind,
            "iat": now,
            "exp": expires,
        }
        if citizen_ref:
            claims["citizen_ref"] = citizen_ref
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid}), expires

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk]}

    def openid_configuration(self, base_url: str) -> dict[str, Any]:
        """What a verifier discovers the key set by (the subset of OpenID discovery it
        reads). The keys are named at the address the verifier reached this document by
        (`base_url`): services inside the deployment's network may not reach the public one."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base_url.rstrip('/')}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": [ALGORITHM],
        }


class KeySource(Protocol):
    async def signing_key(self, token: str) -> tuple[jwt.PyJWK, str]: ...

    def state(self) -> str: ...

    async def close(self) -> None: ...


class LocalKeys:
    """The issuer's own public keys, for the issuing service (no HTTP round trip)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id}

    async def signing_key(self, token: str) -> tuple[jwt.PyJWK, str]:
        algorithm, kid = key_id_of(token)
        key = self._keys.get(kid)
        if key is None or key.algorithm_name != algorithm:
            raise InvalidToken(f"unknown signing key {kid!r}")
        return key, algorithm

    def state(self) -> str:
        return "up"

    async def close(self) -> None:
        return None


def remote_keys(settings: PlatformSettings, client: httpx.AsyncClient | None = None) -> OidcTokens:
    """The issuer's published keys, fetched and cached as an identity provider's are."""
    issuer_settings = settings.model_copy(
        update={
            "oidc_issuer": settings.citizen_issuer,
            "oidc_discovery_url": settings.citizen_discovery_url,
            "oidc_audience": AUDIENCE,
        }
    )
    return OidcTokens(issuer_settings, client)


class CitizenSessions:
    """Verifies citizen sessions: the key, then issuer, audience, lifetime and claims."""

    def __init__(self, settings: PlatformSettings, keys: KeySource | None = None) -> None:
        self.issuer = settings.citizen_issuer.rstrip("/")
        self.leeway = settings.oidc_leeway_seconds
        self.keys: KeySource = keys or remote_keys(settings)

    async def verify(self, token: str) -> Citizen:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("oversized session")
        key, algorithm = await self.keys.signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=AUDIENCE,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int) or not isinstance(expires, int):
            raise InvalidToken("iat and exp must be integers")
        if expires - issued > MAX_SESSION_MINUTES * 60:
            raise InvalidToken(f"session lifetime exceeds {MAX_SESSION_MINUTES} minutes")
        subject, kind, ref = claims["sub"], claims.get("kind"), claims.get("citizen_ref")
        if not isinstance(subject, str) or not _CONTACT_REF.match(subject) or kind not in KINDS:
            raise InvalidToken("subject or kind is not a citizen session's")
        if ref is not None and not (isinstance(ref, str) and _CITIZEN_REF.match(ref)):
            raise InvalidToken("citizen_ref is malformed")
        return Citizen(subject, kind, ref, expires)

    def state(self) -> str:
        return self.keys.state()

    async def close(self) -> None:
        await self.keys.close()


def sessions_of(app: FastAPI) -> CitizenSessions:
    """The app's session verifier: the one its service set up (the issuer verifies with
    its own keys), else one reading the issuer's published keys, made on first use."""
    sessions = getattr(app.state, "citizen_sessions", None)
    if sessions is None:
        sessions = CitizenSessions(app.state.settings.platform)
        app.state.citizen_sessions = sessions
    return sessions


async def citizen_session(request: Request) -> Citizen:
    """The verified citizen of the request's session: 401 (the same answer whatever was
    wrong) without a valid one, 503 while the issuer's keys cannot be had."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a citizen session is needed: POST /citizen/codes, then POST /citizen/sessions",
            headers=UNAUTHORIZED,
        )
    return await verified(
        sessions_of(request.app).verify,
        token.strip(),
        request,
        refused=("citizen session refused", "invalid or expired session", UNAUTHORIZED),
        unavailable="citizen sessions cannot be verified yet; try again shortly",
    )


CitizenSession = Annotated[Citizen, Depends(citizen_session)]
