"""Citizen sessions the way a citizen gets one: ask the notification service for a code,
read it from the message the fake gateway or SMTP sink received, trade it for a session.

Tests that are not about identity mint a session directly with the development signing
key (`minted_session`), and let the service under test verify it with that key
(`trust_development_sessions`; a service process: shared/runtime/dev_issuer.py)."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from shared.kit.citizen import DEV_SIGNING_KEY, Citizen, CitizenSessions, LocalKeys, SessionSigner
from shared.kit.privacy import citizen_ref, contact_ref
from shared.kit.settings import PlatformSettings
from shared.reference import normalize_mobile
from shared.runtime.dev_issuer import development_session
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.smtp_sink import SmtpSink
from tests.harness import wait_for

CODE = re.compile(r"Kode verifikasi Sinergi Anda: (\d{6})\.")


def codes_received(contact: str, sink: SmtpSink, gateway: FakeGateway) -> list[str]:
    """The codes in the messages `contact` (a phone number or email address) received, in order."""
    if "@" in contact:
        texts = [m.text for m in sink.messages_to(contact.lower())]
    else:
        texts = [r.message or "" for r in gateway.delivered_to(normalize_mobile(contact))]
    return [m.group(1) for text in texts if (m := CODE.search(text))]


async def request_code(
    api: httpx.AsyncClient, contact: str, sink: SmtpSink, gateway: FakeGateway, *, timeout: float = 30
) -> str:
    """Ask for a code for `contact` and wait for the message holding it."""
    before = len(codes_received(contact, sink, gateway))
    answer = await api.post("/citizen/codes", json={"contact": contact})
    assert answer.status_code == 202, answer.text

    def arrived() -> str | None:
        codes = codes_received(contact, sink, gateway)
        return codes[-1] if len(codes) > before else None

    return await wait_for(arrived, timeout=timeout)


async def open_session(
    api: httpx.AsyncClient,
    contact: str,
    sink: SmtpSink,
    gateway: FakeGateway,
    *,
    nik: str | None = None,
) -> dict[str, str]:
    """The Authorization header of a fresh session for `contact` (stating `nik`)."""
    code = await request_code(api, contact, sink, gateway)
    body = {"contact": contact, "code": code, **({"nik": nik} if nik else {})}
    answer = await api.post("/citizen/sessions", json=body)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['session']}"}


def verified_citizen(platform: PlatformSettings, nik: str, contact: str | None = None) -> Citizen:
    """Who a session opened with `nik` from `contact` (a +62… number or an address; by
    default an address of the NIK's own) says the caller is, for calling the use cases
    directly (the HTTP path is tests/integration/test_citizen_sessions.py's)."""
    key = platform.citizen_ref_key.get_secret_value()
    contact = contact or f"warga-{nik}@example.com"
    kind = "email" if "@" in contact else "phone"
    return Citizen(contact_ref(contact, key), kind, citizen_ref(nik, key), 0)


def minted_session(platform: PlatformSettings, contact: str, *, nik: str | None = None) -> dict[str, str]:
    """The Authorization header of a session for `contact` (a mobile number in any form
    the APIs take, or an email address), as the development notification service of
    `platform` would sign it once the contact proved itself."""
    key = platform.citizen_ref_key.get_secret_value()
    return development_session(platform.citizen_issuer, key, contact, nik=nik)


def trust_development_sessions(app: FastAPI) -> FastAPI:
    """Let `app` verify sessions signed with the development key for its platform's issuer
    without fetching the keys from a notification service (the issuer itself, which has
    its own keys, is left as it is)."""
    if getattr(app.state, "citizen_sessions", None) is not None:
        return app
    platform: PlatformSettings = app.state.settings.platform
    signer = SessionSigner(DEV_SIGNING_KEY, platform.citizen_issuer)
    app.state.citizen_sessions = CitizenSessions(platform, LocalKeys(signer.jwks()))
    return app
