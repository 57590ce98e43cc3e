"""Every request example in every service's OpenAPI document works as documented: a
newcomer who copies it from /docs gets the documented success, today and on any later
day (relative dates, codes that exist), not a 422.

The examples are read from the running service's own /openapi.json and sent unchanged;
officers' operations get real, legal requests of their own in tests/security
(documented_requests.py), so this covers the citizens' side. An operation that needs a
citizen session (401 without) is sent again with one for the contact its example names,
as the citizen who proved that contact would.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.runtime.select import Infrastructure
from shared.runtime.topology import running_services
from tests.citizen_support import minted_session
from tests.harness import running
from tests.security.test_role_matrix import build_app, openapi_operations

# At least these are documented by example (so the test cannot pass on an empty document).
EXPECTED_EXAMPLES = {
    "complaints": {"POST /complaints"},
    "permits": {"POST /applications"},
    "health": {"POST /appointments"},
}


def schema_of(spec: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    schema = body.get("schema", {})
    ref = schema.get("$ref")
    if ref:
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def documented_examples(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """'METHOD /path' -> its request body example, for the citizens' operations that
    document one (an officer's, declaring security, gets its real, legal request in
    tests/security/documented_requests.py)."""
    found = {}
    for operation, entry in openapi_operations(spec).items():
        if entry.get("security"):
            continue
        content = entry.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        example = content.get("example") or schema_of(spec, content).get("example")
        if example is not None:
            found[operation] = example
    return found


def success_of(entry: dict[str, Any]) -> int:
    (success,) = [int(code) for code in entry["responses"] if code.startswith("2")]
    return success


@pytest.mark.parametrize("service", [s.name for s in running_services()])
async def test_every_documented_request_example_is_accepted(
    service: str, infra: Infrastructure, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_app(service, infra.kafka_bootstrap, fresh_database, monkeypatch)
    platform = app.state.settings.platform
    async with running(app) as client:
        spec = (await client.get("/openapi.json")).json()
        operations = openapi_operations(spec)
        examples = documented_examples(spec)
        assert EXPECTED_EXAMPLES.get(service, set()) <= set(examples), (
            f"{service}: no example documented for {sorted(EXPECTED_EXAMPLES[service] - set(examples))}"
        )
        for operation, example in sorted(examples.items()):
            method, path = operation.split(" ", 1)
            assert "{" not in path, f"{operation}: an example for a path with parameters: extend the test"
            answer = await client.request(method, path, json=example)
            if answer.status_code == 401 and (contact := example.get("phone") or example.get("email")):
                answer = await client.request(
                    method, path, json=example, headers=minted_session(platform, contact)
                )
            assert answer.status_code == success_of(operations[operation]), (
                f"{service}: {operation} with its documented example: {answer.status_code} {answer.text[:300]}"
            )
