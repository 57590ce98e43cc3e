"""Officer authentication: bearer tokens (JWT, HS256) carrying a role.

Citizen-facing creation and tracking-code lookups need no token. Officer endpoints
declare the roles they accept with `require_role`. Roles:

- ``admin``: everything;
- ``coordinator``: the regency coordinator (verifies and disposes complaints to OPDs);
- ``opd_officer``: an officer of one OPD (claim ``opd``), acting on items disposed to it;
- service-specific roles (e.g. ``permit_officer``, ``health_officer``) as services need.

`python -m shared.kit.auth --role coordinator --sub officer-1` prints a token.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.kit import audit

ISSUER = "sinergi"
_bearer = HTTPBearer(auto_error=False, description="Officer token (see `make token`)")


@dataclass(frozen=True)
class Officer:
    subject: str
    role: str
    opd: str | None = None

    def may_act_for_opd(self, opd: str | None) -> bool:
        return self.role in ("admin", "coordinator") or (opd is not None and self.opd == opd)


def issue_token(secret: str, *, subject: str, role: str, opd: str | None = None, hours: float = 8) -> str:
    """A signed officer token; short-lived (a working shift by default)."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": subject, "role": role, "iat": now}
    claims["exp"] = now + int(hours * 3600)
    if opd:
        claims["opd"] = opd
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Officer:
    claims = jwt.decode(
        token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]}
    )
    role = claims.get("role")
    if not isinstance(role, str):
        raise jwt.InvalidTokenError("token has no role")
    return Officer(subject=str(claims["sub"]), role=role, opd=claims.get("opd"))


def require_role(*roles: str) -> Callable[..., Coroutine[Any, Any, Officer]]:
    """FastAPI dependency: 401 without a valid token, 403 with the wrong role.
    ``admin`` is always accepted."""
    accepted = {*roles, "admin"}

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Officer:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        secret = request.app.state.settings.platform.auth_secret.get_secret_value()
        try:
            officer = decode_token(secret, credentials.credentials)
        except jwt.PyJWTError as exc:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"invalid token: {exc}",
                headers={"WWW-Authenticate": "Bearer"},
            ) from exc
        route = request.scope.get("route")
        audit.set_actor(
            audit.Actor(
                subject=officer.subject,
                role=officer.role,
                opd=officer.opd,
                method=request.method,
                route=getattr(route, "path", request.url.path),
                path=request.url.path,
            )
        )
        if officer.role not in accepted:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role '{officer.role}' may not do this; needs {sorted(accepted)}",
            )
        return officer

    return dependency


def main() -> None:
    from shared.kit.settings import PlatformSettings

    parser = argparse.ArgumentParser(description="Print an officer bearer token")
    parser.add_argument("--role", default="admin")
    parser.add_argument("--sub", default="dev-officer")
    parser.add_argument("--opd", default=None)
    parser.add_argument("--hours", type=float, default=8)
    args = parser.parse_args()
    secret = PlatformSettings().auth_secret.get_secret_value()
    print(issue_token(secret, subject=args.sub, role=args.role, opd=args.opd, hours=args.hours))


if __name__ == "__main__":
    main()
