"""docs/operations.md against the code: the commands and endpoints it tells operators
to use exist, and it covers what the issue asks for."""

from __future__ import annotations

import re

import pytest

from shared.kit import admin
from shared.runtime.topology import DOMAIN_PARTITIONS, SERVICES, ServiceInfo
from tests.deploy.helpers import OPERATIONS, ROOT, uses_kit_cli

KIT_COMMANDS = {"serve", "migrate", "republish", "replay-dead-letters"}
EXTRA_COMMANDS = {"integration": {"rebuild", "check-masterplan"}}


@pytest.fixture(scope="module")
def doc() -> str:
    return OPERATIONS.read_text(encoding="utf-8")


def _admin_endpoints() -> set[tuple[str, str]]:
    endpoints = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in admin.router.routes
        for method in route.methods  # type: ignore[attr-defined]
    }
    for api in sorted((ROOT / "services").glob("*/api.py")):
        for method, path in re.findall(
            r'@router\.(get|post|put|delete)\(\s*"(/admin/[^"]*)"', api.read_text()
        ):
            endpoints.add((method.upper(), path))
    return endpoints


def test_documented_service_commands_exist(doc: str) -> None:
    used = re.findall(r"python -m services\.([a-z_]+) ([a-z-]+)", doc)
    assert used
    names = {s.name for s in SERVICES}
    for service, command in used:
        assert service in names or service == "<name>", service
        assert command in KIT_COMMANDS | EXTRA_COMMANDS.get(service, set()), f"{service} {command}"


def test_documented_admin_endpoints_exist(doc: str) -> None:
    endpoints = _admin_endpoints()
    used = set(re.findall(r"\b(GET|POST) (/admin/[a-z/-]+)", doc))
    assert ("POST", "/admin/dead-letters/replay") in used
    assert ("POST", "/admin/outbox/republish") in used
    for method, path in used:
        assert (method, path) in endpoints, f"{method} {path}"


@pytest.mark.parametrize("service", [s for s in SERVICES if s.exists], ids=lambda s: s.name)
def test_service_command_line_has_the_maintenance_commands(service: ServiceInfo) -> None:
    """docs/operations.md runs `python -m services.<name> republish|replay-dead-letters`
    in the containers; that needs the service's __main__ to use shared/kit/cli.py."""
    assert uses_kit_cli(service), (
        f"services/{service.name}/__main__.py does not use shared.kit.cli: "
        "`republish`/`replay-dead-letters` would start a second server instead"
    )


def test_covers_the_operations_the_issue_asks_for(doc: str) -> None:
    for needed in (
        "make up",
        "make down",
        "make logs",
        "deploy/.env.example",
        "pg_dump",
        "pg_restore",
        "replay-dead-letters",
        "republish --since",
        "/admin/rebuild",
        "--scale",
        "docker-compose.cluster.yml",
        "min.insync.replicas=2",
        f"{DOMAIN_PARTITIONS} partitions",
        "apt-get install -y --no-install-recommends prometheus",
    ):
        assert needed in doc, needed
    backup_loop = re.search(r"for db in ([a-z ]+); do\n(.*)\n", doc)
    assert backup_loop is not None and "pg_dump" in backup_loop.group(2)
    assert backup_loop.group(1).split() == [s.database for s in SERVICES]
