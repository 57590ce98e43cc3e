"""Antrean's use cases and the one-time-code sign-in's: the booking draft between pages,
the days with places read live from the health service, a code asked of and traded with
the notification service, the citizen session kept in the draft storage (never in an
address or a cookie of its own), booking and cancelling with it.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.portal.antrean_rules import (
    ANTREAN,
    MASUK,
    PURPOSES,
    Day,
    booking_body,
    day_of,
    live_session,
    practice_days,
    read_code,
    read_contact,
    read_page,
)
from services.portal.clients.base import Refused
from services.portal.domain import Answer, Draft
from services.portal.handlers import Context, forget, keep, stored

WIB = ZoneInfo("Asia/Jakarta")
NONCE_BYTES = 12


def _sealing_key(session_id: str) -> bytes:
    """A key only the browser's cookie gives: the table knows the cookie by another hash
    (`session_key`), so a read of the drafts gives nobody a live citizen session."""
    return hashlib.sha256(b"portal-sign-in:" + session_id.encode()).digest()


def seal(token: str, session_id: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_sealing_key(session_id)).encrypt(nonce, token.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(sealed: str, session_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return AESGCM(_sealing_key(session_id)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
    except (InvalidTag, ValueError):
        return None


# ----- Antrean -------------------------------------------------------------------------------


async def facilities(ctx: Context) -> list[dict[str, Any]]:
    return await ctx.health.facilities()


async def polyclinics(ctx: Context, facility: str) -> list[dict[str, Any]]:
    found = next((f for f in await facilities(ctx) if f["code"] == facility), None)
    return list(found["polyclinics"]) if found else []


async def days(ctx: Context, facility: str, polyclinic: str) -> list[Day]:
    """The polyclinic's next practice days with the places left on each, read live."""
    detail = await ctx.health.facility(facility)
    if not detail or not polyclinic:
        return []
    tomorrow = ctx.clock().astimezone(WIB).date() + timedelta(days=1)
    found = []
    for day in practice_days(detail, polyclinic, tomorrow):
        offered = day_of(day, await ctx.health.sessions(facility, polyclinic, day))
        if offered:
            found.append(offered)
    return found


async def _offered(ctx: Context, step: str, draft: Draft) -> set[str]:
    if step == "fasilitas":
        return {f["code"] for f in await facilities(ctx)}
    if step == "poli":
        return {p["code"] for p in await polyclinics(ctx, draft.get("fasilitas", ""))}
    if step == "tanggal":
        found = await days(ctx, draft.get("fasilitas", ""), draft.get("poli", ""))
        return {d.day.isoformat() for d in found if not d.full}
    return set()


async def answer(ctx: Context, session_id: str, step: str, form: Mapping[str, str]) -> tuple[Draft, Answer]:
    """Read one Antrean page's form; keep its answers when the page has no error."""
    current = await stored(ctx, session_id, ANTREAN)
    result = read_page(step, form, current, await _offered(ctx, step, current))
    if not result.errors:
        current.update(result.values)
        await keep(ctx, session_id, ANTREAN, current)
    return current, result


async def book(ctx: Context, session_id: str, locale: str) -> dict[str, Any]:
    """Book with the session of the phone the citizen proved; the draft goes once the
    health service has the booking. `Refused` carries a full day or a limit."""
    current = await stored(ctx, session_id, ANTREAN)
    signin = await stored(ctx, session_id, MASUK)
    token = await session_of(ctx, session_id)
    if token is None:
        raise SignInNeeded
    booked = await ctx.health.book(booking_body(current, signin["kontak"], locale), token)
    await forget(ctx, session_id, ANTREAN)
    return booked


async def cancel(ctx: Context, session_id: str, code: str) -> dict[str, Any]:
    token = await session_of(ctx, session_id)
    if token is None:
        raise SignInNeeded
    return await ctx.health.cancel(code, token)


# ----- the sign-in ---------------------------------------------------------------------------


class SignInNeeded(Exception):
    """The page needs a live citizen session and there is none (never one, or expired)."""


async def session_of(ctx: Context, session_id: str) -> str | None:
    """The citizen session (the token the services take), while it lives."""
    sealed = live_session(await stored(ctx, session_id, MASUK), ctx.clock())
    return unseal(sealed, session_id) if sealed else None


async def signed_in(ctx: Context, session_id: str) -> Draft | None:
    """The sign-in while its citizen session lives (the contact it proved, its NIK)."""
    signin = await stored(ctx, session_id, MASUK)
    return signin if live_session(signin, ctx.clock()) else None


async def start(ctx: Context, session_id: str, purpose: str, then: str | None) -> Draft:
    """A sign-in for `purpose` (a journey of PURPOSES) that goes on to `then` after (a
    path of this site, checked by the page)."""
    signin = await stored(ctx, session_id, MASUK)
    signin.update(untuk=purpose, lanjut=then or PURPOSES[purpose][1])
    await keep(ctx, session_id, MASUK, signin)
    return signin


async def send_code(ctx: Context, session_id: str, form: Mapping[str, str]) -> tuple[Draft, Answer]:
    """Read the contact page and ask for a code for it (the notification service answers
    the same whatever the contact); a new contact forgets any earlier session."""
    signin = await stored(ctx, session_id, MASUK)
    purpose = signin.get("untuk", ANTREAN)
    email_too = PURPOSES[purpose][0]
    result = read_contact(form, email_too=email_too, ask_nik=email_too)
    if result.errors:
        return signin, result
    sent = await ctx.notifications.request_code(result.values["kontak"])
    signin = Draft(untuk=purpose, lanjut=signin.get("lanjut", PURPOSES[purpose][1]), **result.values)
    signin["tujuan"] = sent.get("destination", "")
    await keep(ctx, session_id, MASUK, signin)
    return signin, result


async def resend(ctx: Context, session_id: str) -> None:
    signin = await stored(ctx, session_id, MASUK)
    if signin.get("kontak"):
        await ctx.notifications.request_code(signin["kontak"])


async def verify(ctx: Context, session_id: str, form: Mapping[str, str]) -> tuple[Draft, Answer]:
    """Trade the code for a citizen session stating the NIK (the patient's for Antrean,
    the one given with the contact for Layanan saya). A wrong or expired code is an error
    on the field, whichever it was (the service does not say)."""
    signin = await stored(ctx, session_id, MASUK)
    result = read_code(form)
    if result.errors:
        return signin, result
    nik = signin.get("nik") or (await stored(ctx, session_id, ANTREAN)).get("nik")
    try:
        opened = await ctx.notifications.open_session(signin["kontak"], result.values["kode"], nik or None)
    except Refused:
        result.refuse("kode", "error.kode.wrong")
        return signin, result
    expires = datetime.fromisoformat(str(opened["expires_at"]).replace("Z", "+00:00"))
    await keep_session(ctx, session_id, signin, opened["session"], expires, nik or "")
    return signin, result


async def keep_session(
    ctx: Context, session_id: str, signin: Draft, token: str, expires: datetime, nik: str
) -> None:
    """Keep the citizen session with the sign-in, sealed under the browser's cookie."""
    signin.update(session=seal(token, session_id), expires_at=expires.isoformat(), nik=nik)
    await keep(ctx, session_id, MASUK, signin)


async def sign_out(ctx: Context, session_id: str) -> None:
    await forget(ctx, session_id, MASUK)
