"""The regency's identity provider (OpenID Connect, Keycloak in the deployment) as the
officers' workspace uses it: its discovery document, the authorization code flow with
PKCE (S256) of the confidential client `sinergi-petugas`, renewing an access token with
the refresh token, and the address that ends the provider's session (RP-initiated
logout). Keys and token checks are the kit's (shared/kit/auth.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from services.portal.clients.base import Unavailable, Upstream


@dataclass(frozen=True)
class Tokens:
    """A token endpoint's answer: the access token the services take, when it expires,
    the refresh token that renews it and the ID token naming the officer."""

    access: str
    expires_at: datetime
    refresh: str | None
    id_token: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"access": self.access, "refresh": self.refresh, "id": self.id_token}


class IdentityProvider(Upstream):
    """One OpenID Connect provider: `issuer` is its public name (tokens' `iss`, the
    browser's addresses), `discovery` where the portal reaches it (compose: inside the
    network)."""

    name = "identity"

    def __init__(
        self,
        *,
        issuer: str,
        discovery: str | None,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        timeout: float,
    ) -> None:
        super().__init__((discovery or issuer).rstrip("/"), timeout)
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched once; it must name the configured issuer."""
        async with self._lock:
            if self._metadata is None:
                found = await self.get("/.well-known/openid-configuration")
                if not isinstance(found, dict) or str(found.get("issuer", "")).rstrip("/") != self.issuer:
                    raise Unavailable(self.name)
                self._metadata = found
            return self._metadata

    async def authorization_url(self, *, state: str, nonce: str, challenge: str) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": self.redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{endpoint}?{urlencode(query)}"

    async def exchange(self, code: str, verifier: str, now: datetime) -> Tokens:
        """The code of the provider's redirect traded for tokens; `Refused` when the
        provider will not (a code used or expired, a verifier that does not match)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        return await self._token(form, now)

    async def refresh(self, refresh_token: str, now: datetime) -> Tokens:
        """A new access token; `Refused` once the provider's session has ended."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, now)

    async def _token(self, form: dict[str, str], now: datetime) -> Tokens:
        endpoint = (await self.metadata())["token_endpoint"]
        answer = await self.post(endpoint, data=form, auth=(self.client_id, self.client_secret))
        return Tokens(
            access=str(answer["access_token"]),
            expires_at=now + timedelta(seconds=int(answer.get("expires_in", 60))),
            refresh=answer.get("refresh_token"),
            id_token=answer.get("id_token"),
        )

    async def logout_url(self, id_token: str | None, after: str) -> str | None:
        """Where the browser ends the provider's session and comes back to `after`; None
        when the provider offers no RP-initiated logout."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not endpoint:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": after}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"
