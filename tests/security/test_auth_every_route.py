"""Every officer and admin route of every service refuses a missing, expired, tampered
or wrong-role token: the test walks each service's own OpenAPI document."""

from __future__ import annotations

import importlib
import re
import time

import jwt
import pytest

from shared.kit.auth import ISSUER, issue_token
from shared.kit.settings import DEV_AUTH_SECRET
from shared.runtime.select import Infrastructure
from shared.runtime.topology import running_services
from tests.harness import running


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
        "wrong role": (issue_token(DEV_AUTH_SECRET, subject="warga", role="citizen"), 403),
    }


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X", path)


@pytest.mark.parametrize("service", [s.name for s in running_services()])
async def test_every_protected_route_refuses_bad_tokens(
    service: str, infra: Infrastructure, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SINERGI_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", fresh_database)
    app = importlib.import_module(f"services.{service}.app").build()
    async with running(app) as client:
        spec = (await client.get("/openapi.json")).json()
        protected = []
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if path.startswith(("/officer", "/admin")):
                    assert operation.get("security"), f"{method.upper()} {path} is not protected"
                if operation.get("security"):
                    protected.append((method, path))
        assert protected, f"{service} declares no protected route"
        for method, path in protected:
            for case, (token, expected) in _tokens().items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = await client.request(method.upper(), _fill(path), headers=headers, json={})
                assert response.status_code == expected, (service, method, path, case, response.text)
