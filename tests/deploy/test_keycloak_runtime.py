"""Keycloak started the way deploy/docker-compose.yml starts it, from the distribution of
the version the compose image pins: the `keycloak` service's command and environment
(interpolated as compose does, with an operator's deploy/.env), its database and role made
by deploy/postgres/init.sh on a real PostgreSQL, the realm file where compose mounts it,
and the edge (deploy/nginx/edge.conf on Debian's nginx) in front. Then what the services
and the operators rely on: the compose health check, the public issuer found at the
internal discovery URL, an officer signing in through the edge, and the kcadm.sh
procedures of docs/operations.md run as written.

Only the network differs from the containers': loopback addresses and free ports
instead of service names, and the local cache (one node, nothing to discover)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import textwrap
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import asyncpg
import httpx
import jwt
import pytest

from shared.kit.auth import OidcTokens
from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import _open_log, _read_tail, _signal_group, _spawn, free_port
from shared.runtime.keycloak import distribution, java_home, officer_user, sign_in
from shared.runtime.topology import SERVICES
from tests.deploy.conftest import DeployPostgres
from tests.deploy.helpers import (
    COMPOSE,
    DEPLOY,
    OPERATIONS,
    REALM_FILE,
    environment,
    interpolate,
    merged_compose,
    nginx_config,
)

pytestmark = pytest.mark.timeout(600)

CONTAINER_HOME = "/opt/keycloak/"
PASSWORD = "Sandi-Uji-Deploy-2026"


def _nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@dataclass
class Deployed:
    """Keycloak as compose runs it, and what compose gives the services."""

    http_port: int
    management_port: int
    edge_port: int
    operator_env: dict[str, str]
    keycloak_env: dict[str, str]
    service_env: dict[str, str]
    home: Path
    work: Path
    log: IO[bytes]
    healthcheck: list[str]
    edge: subprocess.Popen[bytes] | None = None
    _admin: tuple[str, float] | None = field(default=None, repr=False)

    @property
    def internal(self) -> str:
        """http://keycloak:8080 of the compose network."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def portal(self) -> str:
        return self.operator_env["SINERGI_PORTAL_URL"]

    @property
    def issuer(self) -> str:
        return self.service_env["SINERGI_OIDC_ISSUER"]

    @property
    def discovery_url(self) -> str:
        return self.service_env["SINERGI_OIDC_DISCOVERY_URL"].replace("http://keycloak:8080", self.internal)

    def tail(self) -> str:
        return _read_tail(self.log)

    def admin_token(self) -> str:
        if self._admin is None or self._admin[1] < time.monotonic():
            answer = httpx.post(
                f"{self.internal}/auth/realms/master/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self.keycloak_env["KC_BOOTSTRAP_ADMIN_USERNAME"],
                    "password": self.keycloak_env["KC_BOOTSTRAP_ADMIN_PASSWORD"],
                },
                timeout=15,
            )
            answer.raise_for_status()
            self._admin = (answer.json()["access_token"], time.monotonic() + 30)
        return self._admin[0]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        answer = httpx.request(
            method,
            f"{self.internal}/auth/admin/realms/sinergi{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=15,
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def user_id(self, username: str) -> str:
        found = self.admin("GET", f"/users?exact=true&username={urllib.parse.quote(username)}")
        assert len(found) == 1, found
        return str(found[0]["id"])

    def add_officer(self, username: str, groups: list[str]) -> str:
        self.admin("POST", "/users", officer_user(username, PASSWORD, groups))
        return self.user_id(username)

    def jwks(self, url: str | None = None) -> dict[str, Any]:
        discovery = httpx.get(f"{self.discovery_url}/.well-known/openid-configuration", timeout=10).json()
        return dict(httpx.get(url or discovery["jwks_uri"], timeout=10).json())


def _compose_keycloak() -> dict[str, Any]:
    return dict(merged_compose(COMPOSE)["services"]["keycloak"])


def _start_edge(deployed: Deployed, nginx: str) -> subprocess.Popen[bytes]:
    """deploy/nginx/edge.conf with this machine's addresses: the portal's server on the
    edge port, Keycloak's upstream on its port; the other upstreams are not running."""
    conf = (DEPLOY / "nginx" / "edge.conf").read_text(encoding="utf-8")
    conf = conf.replace("listen 8000;", f"listen 127.0.0.1:{deployed.edge_port};")
    conf = conf.replace("http://keycloak:8080;", f"http://127.0.0.1:{deployed.http_port};")
    closed = free_port()
    for service in SERVICES:
        conf = conf.replace(f"http://{service.name}:{service.port};", f"http://127.0.0.1:{closed};")
        if service.port != 8000:
            conf = conf.replace(f"listen {service.port};", f"listen 127.0.0.1:{free_port()};")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{free_port()};")
    assert re.findall(r"listen (\S+);", conf) and all(
        listen.startswith("127.0.0.1:") for listen in re.findall(r"listen (\S+);", conf)
    )
    root = deployed.work / "edge"
    root.mkdir()
    main = nginx_config(root, conf)
    os.chmod(root, 0o777)
    log = _open_log(root / "nginx.out", "sinergi-edge-")
    process = _spawn(
        [nginx, "-c", str(main), "-p", str(root), "-g", "daemon off;"],
        log=log,
        death_signal=signal.SIGTERM,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(root / 'error.log').read_text(errors='replace')}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{deployed.edge_port}/auth/", timeout=2)
            return process
        time.sleep(0.2)
    raise RuntimeError("the edge did not answer")


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        _signal_group(process, sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def deployed(deploy_postgres: DeployPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("keycloak-deploy")
    http_port, management_port, edge_port = free_port(), free_port(), free_port()
    compose = merged_compose(COMPOSE)
    service = _compose_keycloak()
    # deploy/.env of a trial on this host (no TLS proxy here): the portal is the edge.
    operator_env = {
        "SINERGI_PORTAL_URL": f"http://127.0.0.1:{edge_port}",
        "KEYCLOAK_DB_PASSWORD": deploy_postgres.passwords["keycloak"],
        "KEYCLOAK_ADMIN_PASSWORD": secrets.token_hex(32),
        "SINERGI_OIDC_CLIENT_SECRET": secrets.token_hex(32),
        "NOTIFICATIONS_KEY_READER_CLIENT_SECRET": secrets.token_hex(32),
        "INTEGRATION_TEXT_READER_CLIENT_SECRET": secrets.token_hex(32),
    }
    keycloak_env = {k: interpolate(v, operator_env) for k, v in environment(service).items() if v is not None}
    service_env = {
        k: interpolate(v, operator_env)
        for k, v in environment(compose["services"][SERVICES[0].name]).items()
        if v is not None and k.startswith("SINERGI_OIDC_")
    }
    network = {
        "KC_DB_URL_HOST": "127.0.0.1",
        "KC_DB_URL_PORT": str(deploy_postgres.server.port),
        "KC_HTTP_HOST": "127.0.0.1",
        "KC_HTTP_PORT": str(http_port),
        "KC_HTTP_MANAGEMENT_PORT": str(management_port),
        "KC_CACHE": "local",
    }
    # Only the database's host name (a service name in compose) is replaced.
    assert keycloak_env["KC_DB_URL_HOST"] == "postgres"
    assert set(network) & set(keycloak_env) == {"KC_DB_URL_HOST"}, "the test would hide a compose setting"

    # A copy of the distribution of its own: `start` with compose's build options
    # (database, health, relative path) rebuilds it, as the first start of the image does.
    home = work / "keycloak"
    shutil.copytree(distribution(), home, symlinks=True, ignore=shutil.ignore_patterns("data"))
    (mount,) = service["volumes"]
    source, target, mode = mount.split(":")
    assert mode == "ro" and target.startswith(CONTAINER_HOME)
    imported = home / target.removeprefix(CONTAINER_HOME)
    imported.parent.mkdir(parents=True)
    shutil.copy(DEPLOY / source, imported)

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "JAVA_HOME": str(java_home()),
        **keycloak_env,
        **network,
    }
    log = _open_log(work / "keycloak.log", "sinergi-keycloak-")
    process = _spawn(
        [str(home / "bin" / "kc.sh"), *service["command"]], log=log, death_signal=signal.SIGTERM, env=env
    )
    healthcheck = [
        interpolate(part, {}).replace("/127.0.0.1/9000", f"/127.0.0.1/{management_port}")
        for part in service["healthcheck"]["test"][1:]
    ]
    deployment = Deployed(
        http_port,
        management_port,
        edge_port,
        operator_env,
        keycloak_env,
        service_env,
        home,
        work,
        log,
        healthcheck,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Keycloak exited with {process.returncode}:\n{deployment.tail()}")
            if subprocess.run(healthcheck, capture_output=True, timeout=10, check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Keycloak not healthy in 300 s:\n{deployment.tail()}")
            time.sleep(1)
        nginx = _nginx()
        if nginx is not None:
            deployment.edge = _start_edge(deployment, nginx)
        yield deployment
    finally:
        if deployment.edge is not None:
            _stop(deployment.edge, signal.SIGQUIT)
        _stop(process)
        log.close()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


# --- Keycloak as compose runs it ---------------------------------------------------------------------


async def test_healthy_by_the_compose_check_with_its_own_database(
    deployed: Deployed, deploy_postgres: DeployPostgres
) -> None:
    result = await asyncio.to_thread(
        subprocess.run, deployed.healthcheck, capture_output=True, text=True, timeout=10, check=False
    )
    assert result.returncode == 0, result.stderr
    log = (deployed.work / "keycloak.log").read_text(errors="replace")
    assert "Realm 'sinergi' imported" in log
    assert "Profile prod activated" in log, "production mode (`start`)"
    assert f"Listening on: http://127.0.0.1:{deployed.http_port}" in log
    # Keycloak's tables are in its own database, owned by its own role.
    conn = await asyncpg.connect(deploy_postgres.url("keycloak", "keycloak"))
    try:
        realms = await conn.fetch("SELECT name FROM realm ORDER BY name")
        owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'realm'")
    finally:
        await conn.close()
    assert [r["name"] for r in realms] == ["master", "sinergi"]
    assert owner == "keycloak"


def test_the_realm_file_placeholders_come_from_the_env_file(deployed: Deployed) -> None:
    (client,) = deployed.admin("GET", "/clients?clientId=sinergi-petugas")
    assert client["redirectUris"] == [f"{deployed.portal}/petugas/*"]
    secret = deployed.admin("GET", f"/clients/{client['id']}/client-secret")
    assert secret["value"] == deployed.operator_env["SINERGI_OIDC_CLIENT_SECRET"]


async def test_services_find_the_public_issuer_at_the_internal_discovery_url(deployed: Deployed) -> None:
    """What SINERGI_OIDC_DISCOVERY_URL relies on: inside the network Keycloak names the
    public issuer (the `iss` of every token) and gives internal URLs for its keys."""
    async with httpx.AsyncClient(timeout=10) as client:
        discovery = (await client.get(f"{deployed.discovery_url}/.well-known/openid-configuration")).json()
        keys = (await client.get(discovery["jwks_uri"])).json()["keys"]
    assert discovery["issuer"] == deployed.issuer == f"{deployed.portal}/auth/realms/sinergi"
    internal = f"{deployed.discovery_url}/protocol/openid-connect/"
    assert discovery["jwks_uri"] == internal + "certs"
    assert discovery["token_endpoint"] == internal + "token"
    assert discovery["authorization_endpoint"].startswith(deployed.issuer + "/")
    assert any(k.get("use") == "sig" and k.get("alg") == "RS256" for k in keys)
    # The kit, as compose configures the services.
    settings = PlatformSettings(
        environment="production", oidc_issuer=deployed.issuer, oidc_discovery_url=deployed.discovery_url
    )
    verifier = OidcTokens(settings)
    try:
        await verifier.start()
        assert verifier.state() == "up"
    finally:
        await verifier.close()


def test_management_port_is_not_behind_the_edge(deployed: Deployed) -> None:
    if deployed.edge is None:
        pytest.fail("nginx is not installed (make test installs it: Debian package nginx-light)")
    edge = f"http://127.0.0.1:{deployed.edge_port}"
    assert httpx.get(f"{edge}/auth/health/ready", timeout=10).status_code == 404
    assert httpx.get(f"{edge}/auth/metrics", timeout=10).status_code == 404


async def test_an_officer_signs_in_through_the_edge_and_the_kit_accepts_the_token(deployed: Deployed) -> None:
    if deployed.edge is None:
        pytest.fail("nginx is not installed (make test installs it: Debian package nginx-light)")
    subject = deployed.add_officer("deploy-dpupr", ["/OPD/DPUPR"])
    workspace = SimpleNamespace(
        issuer=deployed.issuer,
        portal_url=deployed.portal,
        client_secret=deployed.operator_env["SINERGI_OIDC_CLIENT_SECRET"],
    )
    tokens = sign_in(workspace, "deploy-dpupr", PASSWORD)  # type: ignore[arg-type]
    claims = _claims(tokens["access_token"])
    assert claims["iss"] == deployed.issuer
    assert "sinergi" in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert claims["opd"] == "DPUPR" and "opd_officer" in claims["roles"]
    # The kit as compose configures the services (keys fetched inside the network), and
    # trusting the public issuer alone (reachable here through the edge).
    for discovery_url in (deployed.discovery_url, None):
        settings = PlatformSettings(
            environment="production", oidc_issuer=deployed.issuer, oidc_discovery_url=discovery_url
        )
        verifier = OidcTokens(settings)
        try:
            officer = await verifier.verify(tokens["access_token"])
        finally:
            await verifier.close()
        assert officer.subject == subject and officer.opd == "DPUPR" and officer.has("opd_officer")


def test_the_edge_passes_the_regency_proxy_headers_to_keycloak(deployed: Deployed) -> None:
    """Behind the regency's TLS proxy, Keycloak's back-channel URLs for browsers are the
    public https ones: the edge passes X-Forwarded-Proto/Host on."""
    if deployed.edge is None:
        pytest.fail("nginx is not installed (make test installs it: Debian package nginx-light)")
    answer = httpx.get(
        f"http://127.0.0.1:{deployed.edge_port}/auth/realms/sinergi/.well-known/openid-configuration",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sinergi.purworejokab.go.id"},
        timeout=10,
    ).json()
    assert answer["token_endpoint"] == (
        "https://sinergi.purworejokab.go.id/auth/realms/sinergi/protocol/openid-connect/token"
    )
    # The issuer is KC_HOSTNAME's whatever the headers say.
    assert answer["issuer"] == deployed.issuer


# --- the operators' procedures (docs/operations.md), with kcadm.sh ----------------------------------


def _doc_blocks(heading: str) -> list[str]:
    doc = OPERATIONS.read_text(encoding="utf-8")
    start = doc.index(f"\n{heading}\n")
    end = doc.find("\n### ", start + 1)
    section = doc[start : end if end != -1 else len(doc)]
    return [textwrap.dedent(b) for b in re.findall(r"```bash\n(.*?)\n\s*```", section, re.DOTALL)]


@pytest.fixture(scope="module")
def kcadm(deployed: Deployed) -> Any:
    """Run a documented block in bash with `kcadm` as the doc defines it, signed in as the
    bootstrap administrator (the doc's `config credentials` line, with its password)."""
    config = deployed.work / "kcadm.config"
    tool = deployed.home / "bin" / "kcadm.sh"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(deployed.work),
        "JAVA_HOME": str(java_home()),
    }
    setup = _doc_blocks("## Officers' identity (Keycloak)")[0]
    assert "config credentials --config /tmp/kcadm.config" in setup and "--realm master" in setup
    assert (
        'kcadm() { dc exec -T keycloak /opt/keycloak/bin/kcadm.sh "$@" --config /tmp/kcadm.config; }' in setup
    )
    login = subprocess.run(
        [str(tool), "config", "credentials", "--config", str(config), "--server", f"{deployed.internal}/auth",
         "--realm", "master", "--user", deployed.keycloak_env["KC_BOOTSTRAP_ADMIN_USERNAME"],
         "--password", deployed.keycloak_env["KC_BOOTSTRAP_ADMIN_PASSWORD"]],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr

    def run(block: str, **variables: str) -> str:
        prelude = f'set -euo pipefail\nkcadm() {{ "{tool}" "$@" --config "{config}"; }}\n'
        result = subprocess.run(
            ["bash", "-c", prelude + block],
            env={**env, **variables},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    return run


def _without_examples(block: str, *names: str) -> str:
    """The block without the lines that set the doc's example values of `names`."""
    lines = block.splitlines()
    kept = [line for line in lines if not re.match(rf"({'|'.join(names)})=", line)]
    assert len(kept) == len(lines) - 1, block
    return "\n".join(kept)


def _probe_client(deployed: Deployed) -> str:
    """A client that gets tokens with a password (the workspace's client cannot), with the
    workspace's claim mappers: tokens as officers get them, without a browser."""
    client_id = "deploy-probe"
    if not deployed.admin("GET", f"/clients?clientId={client_id}"):
        realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
        (workspace,) = [c for c in realm["clients"] if c["clientId"] == "sinergi-petugas"]
        deployed.admin(
            "POST",
            "/clients",
            {
                "clientId": client_id,
                "publicClient": True,
                "standardFlowEnabled": False,
                "directAccessGrantsEnabled": True,
                "protocolMappers": workspace["protocolMappers"],
            },
        )
    return client_id


def _password_grant(deployed: Deployed, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{deployed.internal}/auth/realms/sinergi/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": _probe_client(deployed),
            "username": username,
            "password": password,
        },
        timeout=15,
    )


def _reset_password(deployed: Deployed, username: str) -> None:
    deployed.admin(
        "PUT",
        f"/users/{deployed.user_id(username)}/reset-password",
        {"type": "password", "value": PASSWORD, "temporary": False},
    )


@pytest.mark.parametrize(
    ("username", "group", "claim"),
    [
        ("199001012020121001", "/Fasilitas Kesehatan/PKM-BAYAN", ("facility", "PKM-BAYAN")),
        ("199002022020122002", "/Dinas Kesehatan (semua fasilitas)", ("facility", "*")),
        ("199003032020123003", "/OPD/DLH", ("opd", "DLH")),
    ],
)
def test_adding_an_officer_as_documented(
    deployed: Deployed, kcadm: Any, username: str, group: str, claim: tuple[str, str]
) -> None:
    (block,) = _doc_blocks("### Adding an officer")
    output = kcadm(
        _without_examples(block, "OFFICER"),
        OFFICER=username,
        EMAIL=f"{username}@purworejokab.go.id",
        GROUP=group,
    )
    assert f"first password of {username}: " in output
    user = deployed.admin("GET", f"/users/{deployed.user_id(username)}")
    assert user["enabled"] and user["requiredActions"] == ["UPDATE_PASSWORD"]  # --temporary
    groups = deployed.admin("GET", f"/users/{user['id']}/groups")
    assert [g["path"] for g in groups] == [group]
    # The group gives the role and the claim.
    _reset_password(deployed, username)
    answer = _password_grant(deployed, username)
    assert answer.status_code == 200, answer.text
    claims = _claims(answer.json()["access_token"])
    assert claims[claim[0]] == claim[1]
    expected_role = "opd_officer" if claim[0] == "opd" else "health_officer"
    assert expected_role in claims["roles"] and claims["iss"] == deployed.issuer


def test_revoking_an_officer_as_documented(deployed: Deployed, kcadm: Any) -> None:
    username = "199004042020124004"
    deployed.add_officer(username, ["/OPD/DPUPR"])
    first = _password_grant(deployed, username)
    assert first.status_code == 200, first.text
    (block,) = _doc_blocks("### Revoking an officer")
    kcadm(block, OFFICER=username)
    assert deployed.admin("GET", f"/users/{deployed.user_id(username)}")["enabled"] is False
    # No new sign-in, and the session's refresh token is dead.
    assert _password_grant(deployed, username).status_code in (400, 401)
    refresh = httpx.post(
        f"{deployed.internal}/auth/realms/sinergi/protocol/openid-connect/token",
        data={
            "grant_type": "refresh_token",
            "client_id": _probe_client(deployed),
            "refresh_token": first.json()["refresh_token"],
        },
        timeout=15,
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    assert deployed.admin("GET", f"/users/{deployed.user_id(username)}/sessions") == []


def test_rotating_the_signing_keys_as_documented(deployed: Deployed, kcadm: Any) -> None:
    username = "199005052020125005"
    deployed.add_officer(username, ["/Koordinator Pengaduan"])

    def token_kid() -> str:
        answer = _password_grant(deployed, username)
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        kid = str(jwt.get_unverified_header(token)["kid"])
        assert kid in {k["kid"] for k in deployed.jwks()["keys"]}
        return kid

    before = token_kid()
    add, disable = _doc_blocks("### Rotating the signing keys")
    listing = kcadm(add)
    assert '"providerPriority"' in listing
    after = token_kid()
    assert after != before, "new tokens are signed with the new key"
    assert before in {k["kid"] for k in deployed.jwks()["keys"]}, "the old key stays published"
    kcadm(disable)
    published = {k["kid"] for k in deployed.jwks()["keys"]}
    assert before not in published and after in published
    assert token_kid() == after
