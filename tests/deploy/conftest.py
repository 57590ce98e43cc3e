"""A PostgreSQL set up the way the compose deployment sets it up: deploy/postgres/init.sh
run against an embedded PostgreSQL 18 (same major version as the postgres:18 image),
with a database and role per service and one for Keycloak."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared.runtime.embedded import EmbeddedPostgres, _pg_bin_path
from tests.deploy.helpers import DATABASES, DEPLOY


@dataclass
class DeployPostgres:
    server: EmbeddedPostgres
    passwords: dict[str, str]
    init_output: str
    env: dict[str, str]

    def url(self, role: str, database: str) -> str:
        password = self.passwords.get(role, "")
        auth = f"{role}:{password}" if password else role
        return f"postgresql://{auth}@127.0.0.1:{self.server.port}/{database}"

    def run_init(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(DEPLOY / "postgres" / "init.sh")],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="session")
def deploy_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployPostgres]:
    work = tmp_path_factory.mktemp("deploy-postgres")
    server = EmbeddedPostgres(work / "pgdata", None, durable=False, log_path=work / "postgres.log")
    server.start()
    try:
        passwords = {database: f"pw{database}0123456789" for database in DATABASES}
        env = {
            "PATH": f"{_pg_bin_path()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.port),
            "POSTGRES_USER": "postgres",
            **{f"{name.upper()}_DB_PASSWORD": pw for name, pw in passwords.items()},
        }
        deployment = DeployPostgres(server, passwords, "", env)
        result = deployment.run_init()
        assert result.returncode == 0, result.stdout + result.stderr
        deployment.init_output = result.stdout + result.stderr
        yield deployment
    finally:
        server.stop()
