"""docs/operations.md against the code: the commands and endpoints it tells operators
to use exist, and it covers what the issue asks for."""

from __future__ import annotations

import json
import re

import pytest

from shared.kit import admin
from shared.runtime.topology import DOMAIN_PARTITIONS, SERVICES, ServiceInfo, topics
from tests.deploy.helpers import CLUSTER, COMPOSE, DATABASES, OPERATIONS, ROOT, merged_compose, uses_kit_cli

KIT_COMMANDS = {"serve", "migrate", "republish", "replay-dead-letters"}
EXTRA_COMMANDS = {
    "integration": {"rebuild", "check-masterplan"},
    "complaints": {"issue-open311-key", "list-open311-keys", "revoke-open311-key"},
}


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
    used = re.findall(r"python -m services\.([a-z_]+) ([a-z0-9-]+)", doc)
    assert used
    names = {s.name for s in SERVICES}
    for service, command in used:
        assert service in names or service == "<name>", service
        assert command in KIT_COMMANDS | EXTRA_COMMANDS.get(service, set()), f"{service} {command}"


def test_documented_admin_endpoints_exist(doc: str) -> None:
    endpoints = _admin_endpoints()
    used = set(re.findall(r"\b(GET|POST) (/admin/[a-z0-9/{}_-]+)", doc))
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
    # Every database init.sh creates, Keycloak's (officers, keys) included.
    assert backup_loop.group(1).split() == DATABASES


def _section(doc: str, heading: str) -> str:
    start = doc.index(f"\n{heading}\n")
    level = heading.split(" ", 1)[0]
    following = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", doc) if m.start() > start]
    return doc[start : following[0] if following else len(doc)]


def test_covers_the_officers_identity(doc: str) -> None:
    section = _section(doc, "## Officers' identity (Keycloak)")
    for needed in (
        "/auth/admin",
        "kcadm.sh",
        "SINERGI_OIDC_ISSUER",
        "SINERGI_OIDC_DISCOVERY_URL",
        "Dinas Kesehatan (semua fasilitas)",
        "`facility` = `*`",
    ):
        assert needed in section, needed
    adding = _section(doc, "### Adding an officer")
    assert "Join groups" in adding and "kcadm create users -r sinergi" in adding
    assert 'kcadm update "users/$user/groups/$group" -r sinergi -n' in adding
    revoking = _section(doc, "### Revoking an officer")
    assert "enabled=false" in revoking and 'kcadm create "users/$user/logout"' in revoking
    assert "5 minutes" in revoking
    rotating = _section(doc, "### Rotating the signing keys")
    for needed in ("higher priority", "providerId=rsa-generated", 'config.enabled=["false"]'):
        assert needed in rotating, needed
    ready = _section(doc, "### What `/ready` says about identity")
    assert "`identity`" in ready and "does not change `status`" in ready


def test_identity_states_in_the_doc_are_the_kits(doc: str) -> None:
    """The `/ready` identity states the doc explains are the ones shared/kit/auth.py
    reports (a change of wording there shows here)."""
    kit = (ROOT / "shared" / "kit" / "auth.py").read_text(encoding="utf-8")
    ready = _section(doc, "### What `/ready` says about identity")
    for problem in (
        "keys not fetched yet",
        "identity provider unreachable or invalid",
        "the provider publishes no RS256/ES256 signing key",
    ):
        assert problem in kit, problem
        assert problem in ready, problem
    for state in ("`up`", "`down: ", "`degraded: "):
        assert state in ready, state
    assert "'degraded' if self._keys else 'down'" in kit


def test_broker_replacement_and_reassignment_name_what_the_cluster_runs(doc: str) -> None:
    """The broker procedures use Kafka's KRaft tools (no ZooKeeper), the cluster file's
    service and volume names, and move every topic of shared/runtime/topology.py."""
    # Sliced by hand: the shell comments in these sections start with "# " like headings.
    replacing = doc[doc.index("### Replacing a dead broker") : doc.index("### Adding a broker")]
    adding = doc[doc.index("### Adding a broker") : doc.index("## Monitoring")]
    for needed in (
        "kafka-metadata-quorum.sh --bootstrap-server kafka:9092 describe --status",
        "describe --replication",
        "kafka-topics.sh --bootstrap-server kafka:9092 --describe --under-replicated-partitions",
    ):
        assert needed in replacing, needed
    for action in ("--generate", "--execute", "--verify"):
        command = rf"kafka-reassign-partitions\.sh --bootstrap-server kafka:9092 \\\n[^\n]*{action}\b"
        assert re.search(command, adding), action
    assert "--zookeeper" not in doc
    cluster = merged_compose(COMPOSE, CLUSTER)
    started = re.findall(r"dcc (?:up -d|rm -sf) (\S+)", replacing)
    assert started and set(started) <= set(cluster["services"]), started
    volumes = re.findall(r"\bsinergi_([a-z0-9-]+)", replacing)
    assert volumes and set(volumes) <= set(cluster["volumes"]), volumes
    listed = re.search(r"<<'JSON'\n(.*?)\nJSON\n", adding, re.DOTALL)
    assert listed is not None
    assert {t["topic"] for t in json.loads(listed.group(1))["topics"]} == set(topics())
