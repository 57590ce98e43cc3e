"""Property-based fuzzing of every service's HTTP API from its own OpenAPI document.

Each service runs as its own process (as in `make run`) against the real broker and
PostgreSQL; schemathesis generates requests from /openapi.json — valid, boundary and
invalid ones, SQL-looking strings and oversize values included — with an officer token
so officer routes are exercised too. Checks: no 5xx, responses conform to the schema.

The "coverage" phase is left out: on this Python it trips an internal error in
hypothesis' lambda introspection (not in the API under test).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from shared.kit.auth import issue_token
from shared.kit.settings import DEV_AUTH_SECRET
from shared.runtime.embedded import free_port
from shared.runtime.select import Infrastructure
from shared.runtime.topology import running_services
from tests.harness import start_service_process, wait_ready

EXAMPLES_PER_OPERATION = 25


@pytest.mark.parametrize("service", [s.name for s in running_services()])
async def test_no_input_yields_a_server_error(
    service: str, infra: Infrastructure, fresh_database: str
) -> None:
    port = free_port()
    proc = start_service_process(
        service, bootstrap=infra.kafka_bootstrap, database_url=fresh_database, port=port
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc)
        token = issue_token(DEV_AUTH_SECRET, subject="fuzzer", role="admin", hours=1)
        result = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
                "--checks", "not_a_server_error,response_schema_conformance",
                "--max-examples", str(EXAMPLES_PER_OPERATION),
                "--seed", "20261128",
                "--phases", "examples,fuzzing",
                "--header", f"Authorization: Bearer {token}",
                "--request-timeout", "10",
                # Replaying dead letters and rebuilding read models are long admin runs, and
                # the live feed is an endless event stream: not request/response endpoints.
                "--exclude-path-regex", "^/admin/(dead-letters/replay|rebuild)$|^/events/stream$",
                "--suppress-health-check", "all",
                "--workers", "2",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(60)  # a graceful stop (its consumers leave their groups) on a loaded machine
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
