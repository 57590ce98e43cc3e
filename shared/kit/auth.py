"""Officer authentication: bearer tokens from the regency's identity provider.

Production trusts one OpenID Connect provider and nothing else (`SINERGI_OIDC_ISSUER`,
Keycloak in the compose deployment): access tokens signed with its published keys
(RS256 or ES256 only), for the audience `SINERGI_OIDC_AUDIENCE`, unexpired, at most 8
hours long. Development without a provider uses HS256 tokens signed with
`SINERGI_AUTH_SECRET` (`make token`); a production service refuses them and refuses to
start without an issuer.

Citizen-facing creation and tracking-code lookups need no token. Officer endpoints
declare the roles they accept with `require_role`. Roles (docs/access.yaml):

- ``admin``: everything;
- ``coordinator``: the regency coordinator (verifies and disposes complaints to OPDs);
- ``opd_officer``: an officer of one OPD (claim ``opd``), acting on items disposed to it;
- ``permit_officer``, ``health_officer`` (claim ``facility``; ``*`` for every facility,
  given explicitly to the health office), ``notification_officer``;
- ``key_reader``: a machine role, the notification service's own account, which asks the
  domain services for citizens' data keys (shared/kit/data_keys.py);
- ``text_reader``: a machine role, the integration view's own account, which asks them for
  the text keys of what citizens wrote (and can open no contact).

A refusal says nothing about why a token failed (401 "invalid or expired token"): the
reason is logged for operators, never returned to whoever holds the token.

`python -m shared.kit.auth --role coordinator --sub officer-1` prints a development token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.kit import audit
from shared.kit.settings import PlatformSettings

log = logging.getLogger(__name__)

ISSUER = "sinergi"  # the issuer of development tokens
ROLES = (
    "admin",
    "coordinator",
    "opd_officer",
    "permit_officer",
    "health_officer",
    "notification_officer",
    "key_reader",
    "text_reader",
)
ALL_FACILITIES = "*"
MAX_TOKEN_HOURS = 8  # a working shift: no officer token lives longer
MAX_TOKEN_BYTES = 8192
ASYMMETRIC = ("RS256", "ES256")
_bearer = HTTPBearer(
    auto_error=False, description="Officer access token from the regency's identity provider"
)


class InvalidToken(Exception):
    """The token cannot be trusted; the message is for the log, not for the client."""


class ProviderUnavailable(Exception):
    """No signing keys could be had from the identity provider yet."""


@dataclass(frozen=True)
class Officer:
    subject: str
    roles: frozenset[str]
    opd: str | None = None
    facility: str | None = None

    @property
    def role(self) -> str:
        """The officer's Sinergi roles, for the audit trail."""
        return ",".join(sorted(self.roles & set(ROLES))) or "-"

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def may_act_for_opd(self, opd: str | None) -> bool:
        return self.has("admin", "coordinator") or (opd is not None and self.opd == opd)

    def may_act_for_facility(self, facility: str) -> bool:
        return self.has("admin") or self.facility in (ALL_FACILITIES, facility)


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Officer: ...

    def state(self) -> str:
        """'up', or why tokens cannot be verified (for /ready)."""
        ...

    async def close(self) -> None: ...


def issue_token(
    secret: str,
    *,
    subject: str,
    role: str,
    opd: str | None = None,
    facility: str | None = None,
    hours: float = MAX_TOKEN_HOURS,
) -> str:
    """A development token (HS256), accepted only without an identity provider."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": subject, "role": role, "iat": now}
    claims["exp"] = now + int(hours * 3600)
    if opd:
        claims["opd"] = opd
    if facility:
        claims["facility"] = facility
    return jwt.encode(claims, secret, algorithm="HS256")


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _check_lifetime(claims: Mapping[str, Any], leeway: float) -> None:
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise InvalidToken("token has no iat or exp")
    if expires - issued > MAX_TOKEN_HOURS * 3600 + leeway:
        raise InvalidToken(f"token lifetime exceeds {MAX_TOKEN_HOURS} hours")


def key_id_of(token: str) -> tuple[str, str]:
    """(algorithm, key id) of a token's header: only RS256/ES256 with a key id pass."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ASYMMETRIC or not isinstance(kid, str):
        raise InvalidToken(f"algorithm {algorithm!r} or key id refused")
    return algorithm, kid


class DevelopmentTokens:
    """HS256 tokens from `make token`: development only."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.secret = settings.auth_secret.get_secret_value()
        self.leeway = settings.oidc_leeway_seconds

    async def verify(self, token: str) -> Officer:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        _check_lifetime(claims, self.leeway)
        role = claims.get("role")
        if not isinstance(role, str):
            raise InvalidToken("token has no role")
        return Officer(str(claims["sub"]), frozenset({role}), claims.get("opd"), claims.get("facility"))

    def state(self) -> str:
        return "up (development tokens)"

    async def close(self) -> None:
        return None


class OidcTokens:
    """Access tokens of an OpenID Connect provider, verified with its published keys.

    The provider's discovery document and key set are fetched at start and cached; a
    token signed with a key id not in the cache makes one refetch (at most one per
    `oidc_jwks_refresh_seconds`, so a flood of forged key ids cannot hammer the
    provider). While the provider is unreachable the cached keys keep working."""

    def __init__(self, settings: PlatformSettings, client: httpx.AsyncClient | None = None) -> None:
        assert settings.oidc_issuer is not None
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.discovery = (settings.oidc_discovery_url or self.issuer).rstrip("/")
        self.audience = settings.oidc_audience
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_uri: str | None = None
        self._fetched_at = -1e9
        self._problem = "keys not fetched yet"
        self._lock = asyncio.Lock()

    def state(self) -> str:
        if self._problem == "":
            return "up"
        return f"{'degraded' if self._keys else 'down'}: {self._problem}"

    async def start(self) -> None:
        """Fetch the keys once; a provider that is down now is retried on first use."""
        await self._refresh(force=True)

    async def close(self) -> None:
        await self._client.aclose()

    async def _refresh(self, *, force: bool = False) -> None:
        async with self._lock:
            now = time.monotonic()
            if not force and now - self._fetched_at < self.settings.oidc_jwks_refresh_seconds:
                return
            self._fetched_at = now
            try:
                if self._jwks_uri is None:
                    discovery = await self._get_json(f"{self.discovery}/.well-known/openid-configuration")
                    if discovery.get("issuer", "").rstrip("/") != self.issuer:
                        raise ValueError(f"discovery names issuer {discovery.get('issuer')!r}")
                    self._jwks_uri = str(discovery["jwks_uri"])
                keys = jwt.PyJWKSet.from_dict(await self._get_json(self._jwks_uri)).keys
            except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
                self._problem = f"identity provider unreachable or invalid ({type(exc).__name__})"
                log.warning("identity provider keys not refreshed", extra={"error": str(exc)[:200]})
                return
            usable = {k.key_id: k for k in keys if k.key_id and k.algorithm_name in ASYMMETRIC}
            self._keys = usable
            self._problem = "" if usable else "the provider publishes no RS256/ES256 signing key"

    async def _get_json(self, url: str) -> dict[str, Any]:
        answer = await self._client.get(url)
        answer.raise_for_status()
        data = answer.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            await self._refresh(force=not self._keys)
        if kid not in self._keys:
            if not self._keys:
                raise ProviderUnavailable(self._problem)
            raise InvalidToken(f"unknown signing key {kid!r}")
        return self._keys[kid]

    async def signing_key(self, token: str) -> tuple[jwt.PyJWK, str]:
        """The published key `token` names and its algorithm (RS256/ES256 only), before
        any claim is checked; InvalidToken for anything else. Citizen sessions
        (citizen.py) verify with it too."""
        algorithm, kid = key_id_of(token)
        key = await self._key(kid)
        if key.algorithm_name != algorithm:
            raise InvalidToken("the token's algorithm is not its key's")
        return key, algorithm

    async def verify(self, token: str) -> Officer:
        key, algorithm = await self.signing_key(token)
        leeway = self.settings.oidc_leeway_seconds
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        _check_lifetime(claims, leeway)
        roles = self._roles(claims)
        opd, facility = (
            _claim(claims, self.settings.oidc_opd_claim),
            _claim(claims, self.settings.oidc_facility_claim),
        )
        return Officer(
            str(claims["sub"]),
            roles,
            opd if isinstance(opd, str) else None,
            facility if isinstance(facility, str) else None,
        )

    def _roles(self, claims: Mapping[str, Any]) -> frozenset[str]:
        for path in self.settings.oidc_roles_claims:
            value = _claim(claims, path)
            if isinstance(value, str):
                return frozenset({value})
            if isinstance(value, Iterable):
                return frozenset(r for r in value if isinstance(r, str))
        return frozenset()


def token_verifier(settings: PlatformSettings) -> TokenVerifier:
    """The verifier this deployment trusts: its identity provider if one is configured,
    else (development only) the shared-secret tokens of `make token`."""
    if settings.oidc_issuer:
        return OidcTokens(settings)
    if settings.environment == "production":
        raise RuntimeError("refusing to start in production without SINERGI_OIDC_ISSUER")
    return DevelopmentTokens(settings)


UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
T = TypeVar("T")


async def officer_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Officer:
    """The officer whose token came with the request: 401 without a valid one (the same
    answer whatever was wrong), 503 while the identity provider cannot be reached."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers=UNAUTHORIZED)
    verifier: TokenVerifier = request.app.state.service.tokens
    return await verified(
        verifier.verify,
        credentials.credentials,
        request,
        refused=("officer token refused", "invalid or expired token", UNAUTHORIZED),
        unavailable="the identity provider cannot be reached; try again shortly",
    )


async def verified(
    verify: Callable[[str], Awaitable[T]],
    token: str,
    request: Request,
    *,
    refused: tuple[str, str, dict[str, str]],
    unavailable: str,
) -> T:
    """Who `verify` says a bearer token is, or the one answer for any bad token (401:
    `refused` is the log message, the answer and its headers, the reason only logged) and
    503 while the keys cannot be had. Officers' tokens and citizens' sessions alike."""
    logged, answer, headers = refused
    try:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("oversized token")
        return await verify(token)
    except InvalidToken as exc:
        log.info(logged, extra={"reason": str(exc)[:200], "path": request.url.path})
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, answer, headers=headers) from None
    except ProviderUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, unavailable, headers={"Retry-After": "10"}
        ) from None


def require_role(*roles: str) -> Callable[..., Coroutine[Any, Any, Officer]]:
    """FastAPI dependency: 401 without a valid token, 403 with none of `roles`.
    ``admin`` is always accepted."""
    accepted = frozenset({*roles, "admin"})

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Officer:
        officer = await officer_of(request, credentials)
        audit.set_actor(audit.Actor.of(request, officer.subject, officer.role, officer.opd))
        if not officer.roles & accepted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs one of the roles {sorted(accepted)}")
        return officer

    return dependency


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a development officer token")
    parser.add_argument("--role", default="admin", choices=ROLES)
    parser.add_argument("--sub", default="dev-officer")
    parser.add_argument("--opd", default=None)
    parser.add_argument("--facility", default=None)
    parser.add_argument("--hours", type=float, default=MAX_TOKEN_HOURS)
    args = parser.parse_args()
    settings = PlatformSettings()
    if settings.environment == "production" or settings.oidc_issuer:
        raise SystemExit("development tokens are refused here: sign in through the identity provider")
    secret = settings.auth_secret.get_secret_value()
    print(
        issue_token(
            secret, subject=args.sub, role=args.role, opd=args.opd, facility=args.facility, hours=args.hours
        )
    )


if __name__ == "__main__":
    main()
