"""Every operation of every service that docs/access.yaml does not list as public, and
every officer page, refuses a missing, garbage, foreign-key, tampered or expired token:
the test walks each service's own OpenAPI document. Which real roles may call what is
checked by tests/security/test_role_matrix.py."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.kit.auth import ISSUER, issue_token
from shared.kit.settings import DEV_AUTH_SECRET
from shared.runtime.select import Infrastructure
from shared.runtime.topology import running_services
from tests.harness import running
from tests.security.test_role_matrix import (
    POLICY_PATH,
    build_app,
    call,
    load_policy,
    openapi_operations,
    request_for,
)


def _tokens() -> dict[str, tuple[str | None, int]]:
    valid = issue_token(DEV_AUTH_SECRET, subject="officer", role="admin")
    header, payload, signature = valid.split(".")
    tampered_payload = jwt.encode(
        {"iss": ISSUER, "sub": "officer", "role": "admin", "exp": int(time.time()) + 3600},
        "not-the-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    expired = jwt.encode(
        {"iss": ISSUER, "sub": "officer", "role": "admin", "exp": int(time.time()) - 60},
        DEV_AUTH_SECRET,
        algorithm="HS256",
    )
    return {
        "missing": (None, 401),
        "garbage": ("not-a-jwt", 401),
        "signed with another key": (tampered_payload, 401),
        "payload altered": (f"{header}.{payload[:-4]}AAAA.{signature}", 401),
        "expired": (expired, 401),
    }


def _with_officer_routes() -> list[str]:
    """Services the policy gives officer routes. The portal has none: test_role_matrix.py
    holds its OpenAPI to its public operations, so a protected route added there without
    a policy entry fails that test."""
    policy = load_policy().services
    return [s.name for s in running_services() if policy[s.name].api.officer or policy[s.name].pages.officer]


@pytest.mark.parametrize("service", _with_officer_routes())
async def test_every_protected_route_refuses_bad_tokens(
    service: str, infra: Infrastructure, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = load_policy().services[service]
    app = build_app(service, infra.kafka_bootstrap, fresh_database, monkeypatch)
    async with running(app) as client:
        operations = openapi_operations((await client.get("/openapi.json")).json())
        # Protected unless documented public: an operation missing from the policy is
        # walked too (and test_role_matrix.py fails it for being missing).
        protected = sorted(op for op in operations if op not in rules.api.public)
        assert protected, f"{service} declares no protected route"
        undeclared = [op for op in protected if not operations[op].get("security")]
        assert not undeclared, (
            f"{service}: not public in {POLICY_PATH.name}, no security in OpenAPI: {undeclared}"
        )
        requests = [request_for(service, op, page=False) for op in protected]
        requests += [request_for(service, op, page=True) for op in sorted(rules.pages.officer)]
        for request in requests:
            for case, (token, expected) in _tokens().items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = await call(client, request, headers)
                assert response.status_code == expected, (
                    service,
                    request["method"],
                    request["url"],
                    case,
                    response.text,
                )
