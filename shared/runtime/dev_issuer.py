"""A stand-in for the notification service as the issuer of citizen sessions, for the
processes the tests and the benchmarks start without a notification service of their own.

It serves ``/.well-known/openid-configuration`` and ``/.well-known/jwks.json`` for the
development signing key (shared/kit/citizen.py, DEV_SIGNING_KEY: what a development
notification service signs with), and mints sessions with that key, as a citizen would
get one after proving a contact. A service started with ``SINERGI_CITIZEN_ISSUER`` set to
`url` verifies them. Development only: production refuses the development key.

A standard-library threaded HTTP server in a daemon thread (background_http.py).
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from shared.kit.citizen import DEV_SIGNING_KEY, SessionSigner
from shared.kit.privacy import citizen_ref, contact_ref
from shared.reference import normalize_mobile
from shared.runtime.background_http import BackgroundHttpServer


def development_session(issuer: str, key: str, contact: str, *, nik: str | None = None) -> dict[str, str]:
    """The Authorization header of a 30-minute session for `contact` (a mobile number in
    any form the APIs take, or an email address), stating `nik` if given, signed with the
    development key for `issuer`; `key` is the deployment's SINERGI_CITIZEN_REF_KEY."""
    kind = "email" if "@" in contact else "phone"
    normalised = contact.lower() if kind == "email" else normalize_mobile(contact)
    token, _ = SessionSigner(DEV_SIGNING_KEY, issuer).issue(
        contact_ref=contact_ref(normalised, key),
        kind=kind,
        citizen_ref=citizen_ref(nik, key) if nik else None,
        now=int(time.time()),
        minutes=30,
    )
    return {"Authorization": f"Bearer {token}"}


class DevelopmentIssuer(BackgroundHttpServer):
    thread_name = "dev-issuer"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._documents: dict[str, Any] = {}
        super().__init__(host, port)

    @property
    def env(self) -> dict[str, str]:
        """What a service process needs to verify this issuer's sessions."""
        return {"SINERGI_CITIZEN_ISSUER": self.url}

    def session(self, key: str, contact: str, *, nik: str | None = None) -> dict[str, str]:
        return development_session(self.url, key, contact, nik=nik)

    def start(self) -> Self:
        signer = SessionSigner(DEV_SIGNING_KEY, self.url)  # the port is known now
        self._documents.update(
            {
                "/.well-known/openid-configuration": signer.openid_configuration(self.url),
                "/.well-known/jwks.json": signer.jwks(),
            }
        )
        return super().start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        documents = self._documents  # filled by start()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = documents.get(self.path)
                body = json.dumps(document or {"detail": "not found"}).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return None

        return Handler
