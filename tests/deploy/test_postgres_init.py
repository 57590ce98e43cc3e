"""deploy/postgres/init.sh on a real PostgreSQL 18: one database and one role per
service and one for Keycloak, each role owning only its database, no role able to
connect to another's; and the per-service backup and restore of docs/operations.md."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncpg
import pytest

from tests.deploy.conftest import DeployPostgres
from tests.deploy.helpers import DATABASES, DEPLOY
from tests.harness import db_execute


async def test_one_database_and_role_per_service(deploy_postgres: DeployPostgres) -> None:
    admin = await asyncpg.connect(deploy_postgres.url("postgres", "postgres"))
    try:
        for database in DATABASES:
            role = await admin.fetchrow(
                "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1",
                database,
            )
            assert role is not None, database
            assert role["rolcanlogin"] and not role["rolsuper"]
            assert not role["rolcreatedb"] and not role["rolcreaterole"]
            owner = await admin.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database
            )
            assert owner == database
        # Each role owns exactly one database.
        owned = await admin.fetch(
            "SELECT pg_get_userbyid(datdba) AS owner, count(*) AS n FROM pg_database GROUP BY 1"
        )
        counts = {r["owner"]: r["n"] for r in owned}
        assert all(counts.get(database) == 1 for database in DATABASES)
    finally:
        await admin.close()


@pytest.mark.parametrize("role", DATABASES)
async def test_a_role_reaches_only_its_own_database(deploy_postgres: DeployPostgres, role: str) -> None:
    # The owner can create its tables (migrations run as this role).
    await db_execute(
        deploy_postgres.url(role, role),
        "CREATE TABLE IF NOT EXISTS deploy_check (id int)",
        "DROP TABLE deploy_check",
    )
    for other in [database for database in DATABASES if database != role] + ["postgres"]:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            conn = await asyncpg.connect(deploy_postgres.url(role, other))
            await conn.close()


async def test_init_is_safe_to_run_again(deploy_postgres: DeployPostgres) -> None:
    result = deploy_postgres.run_init()
    assert result.returncode == 0, result.stdout + result.stderr
    for database in DATABASES:
        assert f"database and role '{database}' ready" in result.stdout


@pytest.mark.parametrize("variable", ["PERMITS_DB_PASSWORD", "KEYCLOAK_DB_PASSWORD"])
def test_init_refuses_a_missing_password(deploy_postgres: DeployPostgres, variable: str) -> None:
    env = {k: v for k, v in deploy_postgres.env.items() if k != variable}
    result = subprocess.run(
        ["bash", str(DEPLOY / "postgres" / "init.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert f"{variable} is not set" in result.stderr


async def test_backup_and_restore_one_service_database(
    deploy_postgres: DeployPostgres, tmp_path: Path
) -> None:
    """docs/operations.md: pg_dump --format=custom per service, pg_restore --clean into
    the same database as its owner."""
    url = deploy_postgres.url("complaints", "complaints")
    await db_execute(
        url,
        "CREATE TABLE backup_probe (id int PRIMARY KEY, note text)",
        "INSERT INTO backup_probe VALUES (1, 'before backup')",
    )
    dump = tmp_path / "complaints.dump"
    env = deploy_postgres.env
    await asyncio.to_thread(
        subprocess.run,
        ["pg_dump", "--username=postgres", "--format=custom", f"--file={dump}", "complaints"],
        env=env,
        check=True,
        timeout=60,
    )
    await db_execute(
        url,
        "UPDATE backup_probe SET note = 'after backup'",
        "INSERT INTO backup_probe VALUES (2, 'lost by the restore')",
    )
    await asyncio.to_thread(
        subprocess.run,
        [
            "pg_restore",
            "--username=postgres",
            "--dbname=complaints",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--role=complaints",
            str(dump),
        ],
        env=env,
        check=True,
        timeout=60,
    )
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, note FROM backup_probe ORDER BY id")
        owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'backup_probe'")
        await conn.execute("DROP TABLE backup_probe")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(1, "before backup")]
    assert owner == "complaints"
