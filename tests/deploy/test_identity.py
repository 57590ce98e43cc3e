"""The officers' identity provider as deployed: the realm file (deploy/keycloak/
sinergi-realm.json) against the code and the reference data (roles, one group per OPD
of the complaints catalogue and per health facility of the seed, the workspace's client,
the claims the kit reads), and Keycloak in compose (version, production mode, database,
public address behind the edge, what the services are told to trust)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.integration.app import IntegrationSettings
from services.notifications.app import NotificationsSettings
from shared.kit.auth import ALL_FACILITIES, ASYMMETRIC, MAX_TOKEN_HOURS, ROLES
from shared.kit.data_keys import KEY_READER, TEXT_READER
from shared.kit.settings import PlatformSettings
from shared.runtime.topology import SERVICES
from tests.deploy.helpers import (
    COMPOSE,
    DEPLOY,
    ENV_EXAMPLE,
    KEYCLOAK_POM,
    REALM_FILE,
    ROOT,
    environment,
    merged_compose,
    read_env_file,
    variable_uses,
)

CATALOGUE = ROOT / "services" / "complaints" / "catalogue.yaml"
HEALTH_SEED = ROOT / "services" / "health" / "seed.yaml"
EDGE_CONF = DEPLOY / "nginx" / "edge.conf"
CLIENT_ID = "sinergi-petugas"
REQUIRED_PORTAL_URL = "${SINERGI_PORTAL_URL:?set SINERGI_PORTAL_URL in deploy/.env}"
IMPORT_DIR = "/opt/keycloak/data/import/"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return dict(json.loads(REALM_FILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def keycloak() -> dict[str, Any]:
    return dict(merged_compose(COMPOSE)["services"]["keycloak"])


def pom_version() -> str:
    found = re.search(r"<keycloak.version>([^<]+)</keycloak.version>", KEYCLOAK_POM.read_text())
    assert found is not None, f"{KEYCLOAK_POM} names no keycloak.version"
    return found.group(1)


def groups_by_path(realm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(groups: list[dict[str, Any]], parent: str) -> None:
        for group in groups:
            path = f"{parent}/{group['name']}"
            found[path] = group
            walk(group.get("subGroups", []), path)

    walk(realm.get("groups", []), "")
    return found


def catalogue_opds() -> list[str]:
    return [opd["code"] for opd in yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["opds"]]


def seed_facilities() -> list[str]:
    """The facilities of the health seed: hospitals (RSUD-) and puskesmas (PKM-) with
    polyclinics (doctors' codes share the prefixes; they are not facilities)."""
    seed = yaml.safe_load(HEALTH_SEED.read_text(encoding="utf-8"))
    return [
        facility["code"]
        for facility in seed["facilities"]
        if facility["code"].startswith(("RSUD-", "PKM-")) and facility.get("polyclinics")
    ]


def the_client(realm: dict[str, Any]) -> dict[str, Any]:
    (client,) = [c for c in realm.get("clients", []) if c["clientId"] == CLIENT_ID]
    return dict(client)


def mapper_claims(client: dict[str, Any], kind: str) -> dict[str, dict[str, str]]:
    """claim name -> config, of the client's mappers of one kind, put in access tokens."""
    return {
        m["config"].get("claim.name", m["name"]): m["config"]
        for m in client.get("protocolMappers", [])
        if m["protocolMapper"] == kind and m["config"].get("access.token.claim") == "true"
    }


# --- the realm file -----------------------------------------------------------------------------


def test_realm_file_is_json_for_the_realm_the_services_trust(realm: dict[str, Any]) -> None:
    assert realm["realm"] == "sinergi" and realm["enabled"] is True
    issuer = environment(merged_compose(COMPOSE)["services"][SERVICES[0].name])["SINERGI_OIDC_ISSUER"]
    assert issuer is not None and issuer.endswith(f"/realms/{realm['realm']}")
    assert realm["registrationAllowed"] is False, "officers are added by operators, never sign up"


def test_the_roles_of_the_code(realm: dict[str, Any]) -> None:
    names = [role["name"] for role in realm["roles"]["realm"]]
    assert sorted(names) == sorted(ROLES) and len(ROLES) == 8


def test_a_group_per_opd_of_the_complaints_catalogue(realm: dict[str, Any]) -> None:
    groups = groups_by_path(realm)
    opds = catalogue_opds()
    assert opds
    in_realm = {path.rsplit("/", 1)[1] for path in groups if path.startswith("/OPD/")}
    assert in_realm == set(opds), "one group /OPD/<code> per OPD of services/complaints/catalogue.yaml"
    for code in opds:
        group = groups[f"/OPD/{code}"]
        assert group["attributes"]["opd"] == [code], code
        assert group["realmRoles"] == ["opd_officer"], code


def test_a_group_per_facility_of_the_health_seed(realm: dict[str, Any]) -> None:
    groups = groups_by_path(realm)
    facilities = seed_facilities()
    assert facilities and any(f.startswith("RSUD-") for f in facilities)
    parent = "/Fasilitas Kesehatan/"
    in_realm = {path.removeprefix(parent) for path in groups if path.startswith(parent)}
    assert in_realm == set(facilities), "one group per facility of services/health/seed.yaml"
    for code in facilities:
        group = groups[parent + code]
        assert group["attributes"]["facility"] == [code], code
        assert group["realmRoles"] == ["health_officer"], code


def test_the_health_office_group_covers_every_facility(realm: dict[str, Any]) -> None:
    everywhere = [
        (path, g)
        for path, g in groups_by_path(realm).items()
        if g.get("attributes", {}).get("facility") == [ALL_FACILITIES]
    ]
    assert [path for path, _ in everywhere] == ["/Dinas Kesehatan (semua fasilitas)"]
    assert everywhere[0][1]["realmRoles"] == ["health_officer"]


def test_every_officer_role_is_given_by_a_group_and_the_machine_role_to_the_service_account_only(
    realm: dict[str, Any],
) -> None:
    given = {role for group in groups_by_path(realm).values() for role in group.get("realmRoles", [])}
    assert given == set(ROLES) - {KEY_READER, TEXT_READER}
    # No person reads citizens' keys: the notification service's account alone reads data
    # keys (contacts), the integration view's alone text keys (what citizens wrote).
    for role, client_id in (
        (KEY_READER, NotificationsSettings().key_reader_client_id),
        (TEXT_READER, IntegrationSettings().text_reader_client_id),
    ):
        [account] = [u for u in realm.get("users", []) if role in u.get("realmRoles", [])]
        assert account["realmRoles"] == [role]
        (client,) = [c for c in realm["clients"] if c["clientId"] == account["serviceAccountClientId"]]
        assert client["clientId"] == client_id
        assert client["serviceAccountsEnabled"] is True and client["standardFlowEnabled"] is False
        assert client["directAccessGrantsEnabled"] is False and client["publicClient"] is False


def test_the_workspace_client_is_confidential_with_the_code_flow_and_pkce_only(realm: dict[str, Any]) -> None:
    client = the_client(realm)
    assert client["enabled"] is True and client["protocol"] == "openid-connect"
    assert client["publicClient"] is False
    assert client["clientAuthenticatorType"] == "client-secret"
    # The secret comes from deploy/.env at import, never from the file.
    assert client["secret"] == "${SINERGI_OIDC_CLIENT_SECRET}"
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client.get("serviceAccountsEnabled", False) is False
    attributes = client["attributes"]
    assert attributes["pkce.code.challenge.method"] == "S256"
    for grant in ("oauth2.device.authorization.grant.enabled", "oidc.ciba.grant.enabled"):
        assert attributes.get(grant, "false") == "false", grant
    # Sign-in returns only to the officers' workspace on the regency's host name.
    assert client["redirectUris"] == ["${SINERGI_PORTAL_URL}/petugas/*"]
    assert "*" not in client.get("webOrigins", [])


def test_access_tokens_carry_what_the_kit_reads(realm: dict[str, Any]) -> None:
    """The audience the services check, the roles, opd and facility claims where the
    kit looks for them, and lifetimes the kit accepts."""
    client = the_client(realm)
    defaults = PlatformSettings()
    audiences = [
        config["included.custom.audience"]
        for config in mapper_claims(client, "oidc-audience-mapper").values()
        if config.get("included.custom.audience")
    ]
    assert audiences == [defaults.oidc_audience] == ["sinergi"]
    roles = mapper_claims(client, "oidc-usermodel-realm-role-mapper")
    assert set(roles) & set(defaults.oidc_roles_claims)
    assert all(config["multivalued"] == "true" for config in roles.values())
    attributes = mapper_claims(client, "oidc-usermodel-attribute-mapper")
    for claim in (defaults.oidc_opd_claim, defaults.oidc_facility_claim):
        assert attributes[claim]["user.attribute"] == claim
        # One value (a string), which is what the kit accepts.
        assert attributes[claim]["multivalued"] == "false" and attributes[claim]["jsonType.label"] == "String"
    assert realm["defaultSignatureAlgorithm"] in ASYMMETRIC
    lifespan = int(client["attributes"].get("access.token.lifespan", realm["accessTokenLifespan"]))
    assert realm["accessTokenLifespan"] == lifespan == 300
    assert realm["ssoSessionMaxLifespan"] <= MAX_TOKEN_HOURS * 3600
    assert realm["sslRequired"] in ("external", "all")


def test_realm_placeholders_are_given_to_keycloak(realm: dict[str, Any], keycloak: dict[str, Any]) -> None:
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", REALM_FILE.read_text(encoding="utf-8")))
    assert placeholders == {
        "SINERGI_OIDC_CLIENT_SECRET",
        "SINERGI_PORTAL_URL",
        "NOTIFICATIONS_KEY_READER_CLIENT_SECRET",
        "INTEGRATION_TEXT_READER_CLIENT_SECRET",
    }
    env = environment(keycloak)
    for name in placeholders:
        assert env[name] == f"${{{name}:?set {name} in deploy/.env}}", name


# --- Keycloak in compose ------------------------------------------------------------------------


def test_keycloak_image_is_the_version_the_tests_run(keycloak: dict[str, Any]) -> None:
    version = pom_version()
    assert keycloak["image"] == f"${{IMAGE_KEYCLOAK:-quay.io/keycloak/keycloak:{version}}}"
    assert read_env_file(ENV_EXAMPLE)["IMAGE_KEYCLOAK"] == f"quay.io/keycloak/keycloak:{version}"


def test_keycloak_runs_in_production_mode_and_imports_the_realm(keycloak: dict[str, Any]) -> None:
    command = keycloak["command"]
    assert command[0] == "start", "production mode (`start`), never start-dev"
    assert "--import-realm" in command
    assert keycloak["restart"] == "unless-stopped"
    mount = f"./keycloak/{REALM_FILE.name}:{IMPORT_DIR}{REALM_FILE.name}:ro"
    assert keycloak["volumes"] == [mount]
    assert keycloak["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = environment(keycloak)
    assert env["KC_BOOTSTRAP_ADMIN_USERNAME"] == "${KEYCLOAK_ADMIN_USER:-admin}"
    assert (
        env["KC_BOOTSTRAP_ADMIN_PASSWORD"]
        == "${KEYCLOAK_ADMIN_PASSWORD:?set KEYCLOAK_ADMIN_PASSWORD in deploy/.env}"
    )
    assert "KC_HOSTNAME_STRICT" not in env, "strict host name (the default)"


def test_keycloak_has_its_own_database_and_role(keycloak: dict[str, Any]) -> None:
    env = environment(keycloak)
    assert env["KC_DB"] == "postgres"
    assert env["KC_DB_URL_HOST"] == "postgres" and env["KC_DB_URL_DATABASE"] == "keycloak"
    assert env["KC_DB_USERNAME"] == "keycloak"
    assert env["KC_DB_PASSWORD"] == "${KEYCLOAK_DB_PASSWORD:?set KEYCLOAK_DB_PASSWORD in deploy/.env}"
    postgres = environment(merged_compose(COMPOSE)["services"]["postgres"])
    assert postgres["KEYCLOAK_DB_PASSWORD"] == env["KC_DB_PASSWORD"]


def test_keycloak_is_public_under_auth_on_the_regency_host_name(keycloak: dict[str, Any]) -> None:
    """KC_HOSTNAME is the public URL the issuer is built from; the services are told that
    same issuer, and fetch its documents at keycloak:8080 inside the network."""
    env = environment(keycloak)
    relative = env["KC_HTTP_RELATIVE_PATH"]
    assert relative == "/auth"
    assert env["KC_HOSTNAME"] == f"{REQUIRED_PORTAL_URL}{relative}"
    assert env["KC_HTTP_ENABLED"] == "true", "TLS ends at the regency's proxy"
    assert env["KC_PROXY_HEADERS"] == "xforwarded"
    assert env["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    assert env["KC_HEALTH_ENABLED"] == "true"
    assert not keycloak.get("ports") and not keycloak.get("expose"), "reached through the edge only"
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))["realm"]
    compose = merged_compose(COMPOSE)
    for service in SERVICES:
        service_env = environment(compose["services"][service.name])
        assert service_env["SINERGI_OIDC_ISSUER"] == f"{env['KC_HOSTNAME']}/realms/{realm}", service.name
        assert service_env["SINERGI_OIDC_DISCOVERY_URL"] == f"http://keycloak:8080{relative}/realms/{realm}"
        assert service_env["SINERGI_ENVIRONMENT"] == "production"


def test_keycloak_healthcheck_asks_the_management_port(keycloak: dict[str, Any]) -> None:
    check = keycloak["healthcheck"]
    test = check["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    assert "/dev/tcp/127.0.0.1/9000" in test[3] and "GET /auth/health/ready " in test[3]
    # A single `$` would be compose's interpolation, not the shell's.
    assert not variable_uses(test) and "$$status" in test[3]
    assert check["start_period"] and check["retries"] >= 3


def test_required_settings_of_the_identity_provider_are_documented() -> None:
    example = read_env_file(ENV_EXAMPLE)
    for name in (
        "SINERGI_PORTAL_URL",
        "KEYCLOAK_DB_PASSWORD",
        "KEYCLOAK_ADMIN_PASSWORD",
        "SINERGI_OIDC_CLIENT_SECRET",
    ):
        assert example[name] == "", name
    assert example["KEYCLOAK_ADMIN_USER"]
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "no\n# trailing slash" in text or "no trailing slash" in text


# --- the edge ----------------------------------------------------------------------------------------


def _server_blocks(conf: str) -> dict[str, str]:
    """listen port -> the text of its server block."""
    blocks = {}
    for match in re.finditer(r"server \{\n(.*?)\n\}", conf, re.DOTALL):
        port = re.search(r"listen (\d+);", match.group(1))
        assert port is not None
        blocks[port.group(1)] = match.group(1)
    return blocks


def test_edge_serves_keycloak_under_auth_beside_the_portal() -> None:
    blocks = _server_blocks(EDGE_CONF.read_text(encoding="utf-8"))
    portal = blocks["8000"]
    auth = re.search(r"location /auth/ \{(.*?)\}", portal, re.DOTALL)
    assert auth is not None and "set $upstream http://keycloak:8080;" in auth.group(1)
    assert "location / {" in portal and "http://integration:8000" in portal
    # Keycloak's management port (health) is not reachable from outside.
    assert ":9000" not in EDGE_CONF.read_text(encoding="utf-8")
    assert all("keycloak" not in block for port, block in blocks.items() if port != "8000")


def test_edge_passes_on_how_the_regency_proxy_received_the_request() -> None:
    conf = EDGE_CONF.read_text(encoding="utf-8")
    # Passed through as received (nothing invented: a made-up X-Forwarded-Proto without
    # its port makes Keycloak drop the Host header's port).
    for header in ("Proto", "Host", "Port"):
        assert f"proxy_set_header X-Forwarded-{header} $http_x_forwarded_{header.lower()};" in conf
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf


def test_edge_conf_is_valid_nginx(tmp_path: Path) -> None:
    """`nginx -t` on the file as the image includes it (inside `http {}`)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.fail("nginx is not installed (make test installs it: Debian package nginx-light)")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        "http {\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {tmp_path}/{kind};\n" for kind in TEMP_PATHS)
        + f"  include {EDGE_CONF};\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
