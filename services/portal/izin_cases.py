"""Izin's use cases: the application draft between pages, the permit types read from the
permits service at each showing, each document sent on to the permits service the moment
it is chosen (the draft keeps only the id it answers), applying, and from Lacak the
documents an officer asked for again, uploaded one by one and sent together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.portal.antrean_cases import SignInNeeded, session_of
from services.portal.clients.base import Refused
from services.portal.domain import Answer, Draft
from services.portal.handlers import Context, Tracked, forget, keep, stored
from services.portal.izin_rules import (
    BERKAS,
    CHECK,
    DOCUMENT_PAGE,
    IZIN,
    applicant_sign_in,
    application_body,
    missing_documents,
    read_page,
    refused_on,
    steps_for,
    still_missing,
)

# The service's answer for a form it could not take as sent (field messages).
INVALID = 422


async def permit_types(ctx: Context) -> list[dict[str, Any]]:
    return await ctx.permits.permit_types()


async def permit_type(ctx: Context, code: str | None) -> dict[str, Any] | None:
    return next((p for p in await permit_types(ctx) if p["code"] == code), None) if code else None


async def draft(ctx: Context, session_id: str) -> tuple[Draft, dict[str, Any] | None]:
    """The citizen's answers so far and the permit type they chose (as the service has it
    now: None when not chosen, or no longer offered)."""
    current = await stored(ctx, session_id, IZIN)
    return current, await permit_type(ctx, current.get("jenis"))


async def answer(
    ctx: Context, session_id: str, step: str, form: Mapping[str, str]
) -> tuple[Draft, dict[str, Any] | None, Answer]:
    """Read one page's form; keep its answers (and forget the service's earlier message
    for that page) when the page has no error."""
    current = await stored(ctx, session_id, IZIN)
    types = await permit_types(ctx)
    offered = {p["code"] for p in types}
    chosen = next((p for p in types if p["code"] == current.get("jenis")), None)
    result = read_page(step, form, current, chosen, offered)
    if not result.errors:
        current.update(result.values)
        current["galat"] = {k: v for k, v in (current.get("galat") or {}).items() if k != step}
        await keep(ctx, session_id, IZIN, current)
        chosen = next((p for p in types if p["code"] == current.get("jenis")), None)
    return current, chosen, result


async def add_document(
    ctx: Context, session_id: str, code: str, content: bytes, filename: str, media_type: str
) -> Draft:
    """Send one required document on to the permits service at once; the draft keeps the
    id it answers (a new file replaces the one before). `Refused` carries its reason and
    nothing is kept."""
    current = await stored(ctx, session_id, IZIN)
    upload = await ctx.permits.upload_document(content, filename, media_type)
    current["dokumen"] = {**(current.get("dokumen") or {}), code: upload}
    current["galat"] = {k: v for k, v in (current.get("galat") or {}).items() if k != DOCUMENT_PAGE + code}
    await keep(ctx, session_id, IZIN, current)
    return current


class SentBack(Exception):
    """The permits service refused the application on fields a page asks: the first such
    page (its messages are kept with the draft and shown there)."""

    def __init__(self, page: str, general: dict[str, str]) -> None:
        super().__init__(page)
        self.page = page
        self.general = general


async def submit(ctx: Context, session_id: str, locale: str) -> dict[str, Any]:
    """Apply; the draft goes once the service has the application. Its answer (tracking
    code, SLA). A refusal on fields raises `SentBack`."""
    current, chosen = await draft(ctx, session_id)
    if chosen is None:
        raise SentBack("jenis", {})
    try:
        submitted = await ctx.permits.apply(application_body(current, chosen, locale))
    except Refused as refused:
        if refused.status != INVALID:
            raise
        by_page = refused_on(chosen, refused.messages)
        general = by_page.pop(CHECK, {})
        current["galat"] = by_page
        await keep(ctx, session_id, IZIN, current)
        first = next((s for s in steps_for(chosen) if s in by_page), CHECK)
        raise SentBack(first, general) from refused
    await forget(ctx, session_id, IZIN)
    return submitted


# ----- from Lacak: the documents an officer asked for again ----------------------------------


@dataclass
class Resubmission:
    """What Lacak offers for an application back with its applicant: the documents asked
    for (code, name), those this browser uploaded so far (code -> upload id), and whether
    a citizen session lives (only the applicant's phone or email may send them)."""

    missing: list[tuple[str, str]] = field(default_factory=list)
    uploaded: dict[str, str] = field(default_factory=dict)
    signed_in: bool = False
    sign_in: str = ""


async def _uploads(ctx: Context, session_id: str, code: str) -> dict[str, str]:
    return dict((await stored(ctx, session_id, BERKAS)).get(code) or {})


async def resubmission(ctx: Context, session_id: str, case: Tracked) -> Resubmission | None:
    """The documents to send again for `case`, or None when it waits for none."""
    codes = case.facts.get("missing") or []
    if case.service != "permits" or not codes:
        return None
    chosen = await permit_type(ctx, case.facts.get("permit_type"))
    asked = missing_documents({"status": case.status, "missing_documents": codes}, chosen)
    signed_in = await session_of(ctx, session_id) is not None
    uploaded = await _uploads(ctx, session_id, case.code)
    return Resubmission(asked, uploaded, signed_in, applicant_sign_in(case.code))


async def _applicant_session(ctx: Context, session_id: str) -> str:
    """The citizen session the documents go with; `SignInNeeded` without a live one."""
    token = await session_of(ctx, session_id)
    if token is None:
        raise SignInNeeded
    return token


async def add_missing(
    ctx: Context, session_id: str, code: str, document: str, content: bytes, filename: str, media_type: str
) -> None:
    """Upload one asked-for document for the application `code` (kept by this browser
    until the documents are sent). `Refused` carries the service's reason; `SignInNeeded`
    without a citizen session (asked before the upload, not after it)."""
    await _applicant_session(ctx, session_id)
    upload = await ctx.permits.upload_document(content, filename, media_type)
    kept = await stored(ctx, session_id, BERKAS)
    kept[code] = {**(kept.get(code) or {}), document: upload}
    await keep(ctx, session_id, BERKAS, kept)


async def send_missing(ctx: Context, session_id: str, case: Tracked) -> list[str]:
    """Send the asked-for documents together (the service takes them all at once; the SLA
    clock resumes) with the citizen session, which the service checks against the
    applicant's phone and email (a 404 `Refused` when it is another contact's). The
    documents still to upload, none when sent."""
    token = await _applicant_session(ctx, session_id)
    codes = list(case.facts.get("missing") or [])
    uploaded = await _uploads(ctx, session_id, case.code)
    missing = still_missing(codes, uploaded)
    if missing:
        return missing
    await ctx.permits.resubmit(case.code, {c: uploaded[c] for c in codes}, token)
    kept = await stored(ctx, session_id, BERKAS)
    kept.pop(case.code, None)
    await keep(ctx, session_id, BERKAS, kept)
    return []
