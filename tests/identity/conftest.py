"""The regency's identity provider for the identity tests: Keycloak from its own
distribution with the deployment's realm file, on loopback, once per test session, and
officers in it the way an operator adds them (a user in the OPD's or facility's group)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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

    @property
    def issuer(self) -> str:
        return self.keycloak.issuer

    def token(self, username: str) -> str:
        """A fresh access token for the officer, from the provider's token endpoint after
        a sign-in through its login page."""
        return str(sign_in(self.keycloak, username, PASSWORD)["access_token"])

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    work = Path(tempfile.mkdtemp(prefix="sinergi-idp-"))
    keycloak = EmbeddedKeycloak(work)
    keycloak.start()
    try:
        found = Provider(keycloak)
        for username, groups in OFFICERS.items():
            found.subjects[username] = keycloak.add_officer(username, PASSWORD, groups)
        yield found
    finally:
        keycloak.stop()
        shutil.rmtree(work, ignore_errors=True)
