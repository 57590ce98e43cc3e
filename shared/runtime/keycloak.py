"""Keycloak, the regency's identity provider, started on loopback from its own
distribution (Maven Central; `shared/runtime/maven/keycloak/pom.xml`), for the tests of
officer sign-in and for `make run` when asked (`SINERGI_IDP=keycloak`).

The realm is the deployment's own file (`deploy/keycloak/sinergi-realm.json`), imported
at start, so what the tests prove is what compose runs. The distribution is unpacked
and built once into `.cache/` (about 25 s); each instance then runs from a hard-linked
copy with its own data folder and an in-memory database, and is ready in about 20 s.
Keycloak 26 needs Java 21 or newer: the newest JDK under /usr/lib/jvm (or JAVA_HOME) is
used.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from shared.kit.settings import DEV_KEY_READER_SECRET, DEV_OIDC_CLIENT_SECRET, DEV_TEXT_READER_SECRET
from shared.runtime import jvm
from shared.runtime.embedded import ServerProcess, _open_log, _read_tail, _register, _spawn, free_port
from shared.runtime.jvm import CACHE, pom_property, resolve

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
POM = Path(__file__).with_name("maven") / "keycloak" / "pom.xml"
REALM_FILE = ROOT / "deploy" / "keycloak" / "sinergi-realm.json"
REALM = "sinergi"
# Options fixed when the distribution is built (Keycloak re-augments otherwise).
BUILD_OPTIONS = ("--db=dev-mem",)
MINIMUM_JAVA = 21


def keycloak_version() -> str:
    return pom_property(POM, "keycloak.version")


def java_home(minimum: int = MINIMUM_JAVA) -> Path:
    """A JDK new enough for Keycloak (see `jvm.java_home`)."""
    return jvm.java_home(minimum)


def distribution() -> Path:
    """The unpacked and built distribution, resolving it with Maven on first use (the
    Maven repository is cached under `.cache/m2`, so later runs work offline)."""
    home = CACHE / "keycloak" / f"keycloak-{keycloak_version()}"
    if not (home / "bin" / "kc.sh").exists():
        resolve(POM, f"Keycloak {keycloak_version()}")
    built = home / ".sinergi-built"
    if not built.exists() or built.read_text() != " ".join(BUILD_OPTIONS):
        logger.info("building Keycloak %s (once)", keycloak_version())
        subprocess.run(
            [str(home / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
            check=True,
            env={**os.environ, "JAVA_HOME": str(java_home())},
            stdout=subprocess.DEVNULL,
        )
        built.write_text(" ".join(BUILD_OPTIONS))
    return home


def officer_user(username: str, password: str, groups: list[str]) -> dict[str, Any]:
    """An officer as the realm's admin API takes a new user: enabled, with a verified
    office address, in `groups` (paths like `/OPD/DPUPR`) and a password for good."""
    return {
        "username": username,
        "enabled": True,
        "emailVerified": True,
        "email": f"{username}@purworejokab.go.id",
        "firstName": username,
        "lastName": "Petugas",
        "credentials": [{"type": "password", "value": password, "temporary": False}],
        "groups": groups,
    }


class EmbeddedKeycloak(ServerProcess):
    """One Keycloak on 127.0.0.1 with the deployment's realm, its bootstrap admin
    `admin`/`admin` (loopback only) and the officer workspace's client secret given."""

    label = "Keycloak"

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        *,
        client_secret: str = DEV_OIDC_CLIENT_SECRET,
        key_reader_secret: str = DEV_KEY_READER_SECRET,
        text_reader_secret: str = DEV_TEXT_READER_SECRET,
        portal_url: str = "http://127.0.0.1:8005",
        startup_timeout: float = 120.0,
    ) -> None:
        self.work_dir = Path(work_dir).absolute()
        super().__init__(port, self.work_dir / "keycloak.log", startup_timeout)
        self.client_secret = client_secret
        self.key_reader_secret = key_reader_secret
        self.text_reader_secret = text_reader_secret
        self.portal_url = portal_url
        self.admin = ("admin", "admin")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    def start(self) -> None:
        if self.running:
            return
        began = time.monotonic()
        home = self.work_dir / "keycloak"
        if not home.exists():
            # Hard links: the instance shares the built distribution without copying it,
            # and keeps its own data folder (imports, transaction logs).
            home.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(distribution()), str(home)], check=True)
            shutil.rmtree(home / "data", ignore_errors=True)
        (home / "data" / "import").mkdir(parents=True, exist_ok=True)
        shutil.copy(REALM_FILE, home / "data" / "import" / f"{REALM}-realm.json")
        self._launch_on_a_port(lambda: self._launch(home))
        self.last_start_seconds = time.monotonic() - began
        logger.info("Keycloak ready at %s in %.1fs", self.issuer, self.last_start_seconds)

    def _launch(self, home: Path) -> None:
        assert self.log_path is not None
        self._log = _open_log(self.log_path, "sinergi-keycloak-")
        self._log_start = self._log.tell()
        env = {
            **os.environ,
            "JAVA_HOME": str(java_home()),
            "KC_BOOTSTRAP_ADMIN_USERNAME": self.admin[0],
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin[1],
            # Placeholders of the realm file.
            "SINERGI_OIDC_CLIENT_SECRET": self.client_secret,
            "SINERGI_PORTAL_URL": self.portal_url,
            "NOTIFICATIONS_KEY_READER_CLIENT_SECRET": self.key_reader_secret,
            "INTEGRATION_TEXT_READER_CLIENT_SECRET": self.text_reader_secret,
        }
        argv = [
            str(home / "bin" / "kc.sh"), "start", "--optimized", "--import-realm",
            "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={self.port}",
            "--hostname-strict=false", "--cache=local",
        ]  # fmt: skip
        self._proc = _spawn(argv, log=self._log, death_signal=signal.SIGTERM, env=env)
        _register(self)
        deadline = time.monotonic() + self.startup_timeout
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Keycloak exited with {self._proc.returncode}:\n{self._tail()}")
            try:
                with urllib.request.urlopen(discovery, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(
            f"Keycloak did not answer {discovery} in {self.startup_timeout:.0f}s:\n{self._tail()}"
        )

    def _tail(self) -> str:
        return _read_tail(self.log_path, self._log_start) if self.log_path else ""

    # -- administration, for tests and `make run`: officers are people in the realm ---------

    def admin_token(self) -> str:
        form = {
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": self.admin[0],
            "password": self.admin[1],
        }
        answer = _post_form(f"{self.url}/realms/master/protocol/openid-connect/token", form)
        return str(answer["access_token"])

    def add_officer(self, username: str, password: str, groups: list[str]) -> str:
        """Create a user in the realm in `groups` (paths like `/OPD/DPUPR`); returns its id."""
        token = self.admin_token()
        user = officer_user(username, password, groups)
        _admin_request(token, "POST", f"{self.url}/admin/realms/{REALM}/users", user)
        found = _admin_request(
            token, "GET", f"{self.url}/admin/realms/{REALM}/users?exact=true&username={username}"
        )
        return str(found[0]["id"])

    def add_client(self, client: dict[str, Any]) -> None:
        """Register another client in the realm (a representation as in the realm file)."""
        _realm_admin(self, "POST", "/clients", client)

    def sign_out_everywhere(self, user_id: str) -> None:
        """End every session of a user, as an operator revoking an officer does."""
        _realm_admin(self, "POST", f"/users/{user_id}/logout")

    def grant_role(self, user_id: str, role: str) -> None:
        """Give a user a realm role directly (not through a group, so without its claims)."""
        found = _realm_admin(self, "GET", f"/roles/{role}")
        _realm_admin(self, "POST", f"/users/{user_id}/role-mappings/realm", [found])

    def rotate_keys(self, algorithm: str = "RS256") -> None:
        """Add a new signing key that outranks the current one, as an operator rotating
        keys does: new tokens are signed with it; the old key still verifies old ones."""
        realm = _realm_admin(self, "GET", "")
        provider = "rsa-generated" if algorithm.startswith("RS") else "ecdsa-generated"
        config: dict[str, list[str]] = {"priority": [str(int(time.time()))], "algorithm": [algorithm]}
        if provider == "ecdsa-generated":
            config["ecdsaEllipticCurveKey"] = ["P-256"]
        _realm_admin(
            self,
            "POST",
            "/components",
            {
                "name": f"rotated-{int(time.time() * 1000)}",
                "providerId": provider,
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm["id"],
                "config": config,
            },
        )


def password_grant(
    keycloak: EmbeddedKeycloak, client_id: str, username: str, password: str, *, host: str = "127.0.0.1"
) -> str:
    """An access token through the resource-owner password grant of a client that allows
    it (the realm's own client does not: tests add one to obtain tokens the workspace's
    client would never get, e.g. for another audience)."""
    url = f"http://{host}:{keycloak.port}/realms/{REALM}/protocol/openid-connect/token"
    form = {"grant_type": "password", "client_id": client_id, "username": username, "password": password}
    return str(_post_form(url, form)["access_token"])


def sign_in(
    keycloak: EmbeddedKeycloak, username: str, password: str, *, redirect_uri: str | None = None
) -> dict[str, Any]:
    """Sign an officer in as a person would, through the realm's login page: the
    authorization code flow with PKCE of the workspace's client, then the code exchanged
    at the token endpoint. Returns the token response (access, refresh and ID tokens)."""
    import httpx

    redirect_uri = redirect_uri or f"{keycloak.portal_url}/petugas/masuk/kembali"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    endpoint = f"{keycloak.issuer}/protocol/openid-connect"
    query = {
        "client_id": "sinergi-petugas",
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    code, returned = authorization_code(
        f"{endpoint}/auth?{urllib.parse.urlencode(query)}", username, password
    )
    if returned != state:
        raise PermissionError(f"sign-in of {username} came back with another state")
    with httpx.Client(timeout=15) as client:
        tokens = client.post(
            f"{endpoint}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": "sinergi-petugas",
                "client_secret": keycloak.client_secret,
                "code_verifier": verifier,
            },
        )
        tokens.raise_for_status()
        return dict(tokens.json())


def authorization_code(authorize_url: str, username: str, password: str) -> tuple[str, str]:
    """What the realm's login page at `authorize_url` sends back once the officer types
    their password: (code, state) of the redirect, as a browser would receive them."""
    import httpx

    with httpx.Client(timeout=15, follow_redirects=False) as client:
        page = client.get(authorize_url)
        page.raise_for_status()
        form = re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text)
        if form is None:
            raise RuntimeError("Keycloak showed no login form")
        action = html.unescape(form.group(1))
        # Keycloak marks its session cookies Secure even on loopback http, where a browser
        # still sends them (a secure context) but an HTTP library does not: send them as a
        # browser would.
        cookies = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
        answer = client.post(
            action,
            data={"username": username, "password": password, "credentialId": ""},
            headers={"Cookie": cookies},
        )
    location = answer.headers.get("location", "")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if answer.status_code != 302 or "code" not in query or "state" not in query:
        raise PermissionError(f"sign-in of {username} refused ({answer.status_code})")
    return query["code"][0], query["state"][0]


def _realm_admin(keycloak: EmbeddedKeycloak, method: str, path: str, body: Any = None) -> Any:
    return _admin_request(keycloak.admin_token(), method, f"{keycloak.url}/admin/realms/{REALM}{path}", body)


def _post_form(url: str, form: dict[str, str]) -> Any:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
        return json.loads(answer.read())


def _admin_request(token: str, method: str, url: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read()
    return json.loads(text) if text else None


__all__ = [
    "REALM",
    "REALM_FILE",
    "EmbeddedKeycloak",
    "authorization_code",
    "distribution",
    "free_port",
    "java_home",
    "officer_user",
    "password_grant",
    "sign_in",
]


# Officers of the development provider, one per role (development only: loopback, known
# password). Groups as an operator would choose them.
DEMO_PASSWORD = "Sinergi-Dev-Petugas-2026"
DEMO_OFFICERS = {
    "admin-diskominfo": ["/Administrator"],
    "koordinator": ["/Koordinator Pengaduan"],
    "opd-dpupr": ["/OPD/DPUPR"],
    "petugas-dpmptsp": ["/DPMPTSP Perizinan"],
    "petugas-rsud": ["/Fasilitas Kesehatan/RSUD-TJITRO"],
    "petugas-notifikasi": ["/Petugas Notifikasi"],
}
DEV_PORT = 8180


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.runtime.keycloak serve`: the development identity provider on
    127.0.0.1:8180 with the deployment's realm and one demo officer per role;
    `... token USER`: an access token for a demo officer, through the login page."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m shared.runtime.keycloak", description=main.__doc__)
    parser.add_argument("command", choices=["serve", "token"])
    parser.add_argument("user", nargs="?", default="admin-diskominfo", choices=sorted(DEMO_OFFICERS))
    parser.add_argument("--port", type=int, default=DEV_PORT)
    args = parser.parse_args(argv)
    keycloak = EmbeddedKeycloak(ROOT / ".run" / "keycloak", args.port)
    if args.command == "token":
        print(sign_in(keycloak, args.user, DEMO_PASSWORD)["access_token"])
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shutil.rmtree(keycloak.work_dir, ignore_errors=True)  # in-memory realm: start afresh
    with keycloak:
        for username, groups in DEMO_OFFICERS.items():
            keycloak.add_officer(username, DEMO_PASSWORD, groups)
        print(
            f"\nIdentity provider (development) at {keycloak.issuer}\n"
            f"  start Sinergi against it:  SINERGI_OIDC_ISSUER={keycloak.issuer} make run\n"
            f"  admin console: {keycloak.url}/admin  (admin / admin)\n"
            f"  officers (password {DEMO_PASSWORD}): {', '.join(DEMO_OFFICERS)}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while keycloak.running:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
