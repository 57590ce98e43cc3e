"""The regency's identity provider for the tests: Keycloak from its own distribution with
the deployment's realm file, on loopback, once per test session (the `provider` fixture
in tests/conftest.py), and officers in it the way an operator adds them (a user in the
OPD's or facility's group)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shared.runtime.embedded import free_port
from shared.runtime.keycloak import DEMO_OFFICERS, REALM, EmbeddedKeycloak, sign_in

PASSWORD = "Sandi-Uji-Petugas-2026"

# username -> the groups an operator puts the officer in (deploy/keycloak/sinergi-realm.json):
# the development provider's officers, one per role, and the others the scope tests need
# (a second OPD and facility, the health office's officer of every facility).
OFFICERS = {
    **DEMO_OFFICERS,
    "opd-dlh": ["/OPD/DLH"],
    "petugas-bayan": ["/Fasilitas Kesehatan/PKM-BAYAN"],
    "petugas-dinkes": ["/Dinas Kesehatan (semua fasilitas)"],
}


@dataclass
class Provider:
    keycloak: EmbeddedKeycloak
    subjects: dict[str, str] = field(default_factory=dict)
    _recent: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.keycloak.issuer

    def token(self, username: str) -> str:
        """A fresh access token for the officer, from the provider's token endpoint after
        a sign-in through its login page."""
        return str(sign_in(self.keycloak, username, PASSWORD)["access_token"])

    def recent_token(self, username: str) -> str:
        """A token signed in for within the last minute (the realm's tokens live 5)."""
        issued, token = self._recent.get(username, (0.0, ""))
        if time.monotonic() - issued > 60:
            issued, token = time.monotonic(), self.token(username)
            self._recent[username] = (issued, token)
        return token

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    @property
    def portal_port(self) -> int:
        """The port a portal under test listens on: the realm's workspace client sends
        officers back only to the address it was imported with."""
        port = urlsplit(self.keycloak.portal_url).port
        assert port is not None
        return port


# The officer who holds each role in the tests (the health office's officer: every facility).
OFFICER_OF_ROLE = {
    "admin": "admin-diskominfo",
    "coordinator": "koordinator",
    "opd_officer": "opd-dpupr",
    "permit_officer": "petugas-dpmptsp",
    "health_officer": "petugas-dinkes",
    "notification_officer": "petugas-notifikasi",
}


def start_provider() -> tuple[Provider, Path]:
    work = Path(tempfile.mkdtemp(prefix="sinergi-idp-"))
    # The portal's address is chosen before the realm is imported (its redirect URIs).
    keycloak = EmbeddedKeycloak(work, portal_url=f"http://127.0.0.1:{free_port()}")
    keycloak.start()
    found = Provider(keycloak)
    for username, groups in OFFICERS.items():
        found.subjects[username] = keycloak.add_officer(username, PASSWORD, groups)
    return found, work


class ProviderLine:
    """A loopback TCP line to the provider that a test can cut and mend: the service and
    the test reach the provider through it (Keycloak names itself by the address it is
    asked at), so cutting it takes the provider away from the service mid-run without
    stopping it for the rest of the session."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/{REALM}"

    async def mend(self) -> None:
        self._server = await asyncio.start_server(self._carry, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()
                self._open.discard(sink)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
