"""The regency's identity provider for the tests: Keycloak from its own distribution with
the deployment's realm file, on loopback, once per test session (the `provider` fixture
in tests/conftest.py), and officers in it the way an operator adds them (a user in the
OPD's or facility's group)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.runtime.keycloak import EmbeddedKeycloak, sign_in

PASSWORD = "Sandi-Uji-Petugas-2026"

# username -> the groups an operator puts the officer in (deploy/keycloak/sinergi-realm.json)
OFFICERS = {
    "admin-diskominfo": ["/Administrator"],
    "koordinator": ["/Koordinator Pengaduan"],
    "opd-dpupr": ["/OPD/DPUPR"],
    "opd-dlh": ["/OPD/DLH"],
    "petugas-dpmptsp": ["/DPMPTSP Perizinan"],
    "petugas-rsud": ["/Fasilitas Kesehatan/RSUD-TJITRO"],
    "petugas-bayan": ["/Fasilitas Kesehatan/PKM-BAYAN"],
    "petugas-dinkes": ["/Dinas Kesehatan (semua fasilitas)"],
    "petugas-notifikasi": ["/Petugas Notifikasi"],
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
    keycloak = EmbeddedKeycloak(work)
    keycloak.start()
    found = Provider(keycloak)
    for username, groups in OFFICERS.items():
        found.subjects[username] = keycloak.add_officer(username, PASSWORD, groups)
    return found, work
