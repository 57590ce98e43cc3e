"""The portal's use cases: a citizen's draft between pages, photos sent on to the
complaints service as they come, filing, and following any code. No case data stays
here: a filed complaint's draft is deleted, and Lacak reads the service that holds the
case each time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.portal import domain, repository
from services.portal.clients.base import Download, Upstream
from services.portal.clients.complaints import ComplaintsClient
from services.portal.clients.health import HealthClient
from services.portal.clients.identity import IdentityProvider
from services.portal.clients.integration import IntegrationClient
from services.portal.clients.notifications import NotificationsClient
from services.portal.clients.permits import PermitsClient
from services.portal.clients.tiles import TileServer
from services.portal.domain import LAPOR, Answer, Draft, Line, tile_in_regency
from services.portal.izin_rules import application_facts
from services.portal.petugas_rules import SessionPolicy
from shared.kit.auth import TokenVerifier


@dataclass
class OfficerAccess:
    """How officers sign in to the workspace: the identity provider (None in development
    without one, where `development_secret` signs the kit's development tokens), the
    kit's verifier of their access tokens, and when a session ends."""

    provider: IdentityProvider | None
    tokens: TokenVerifier
    policy: SessionPolicy
    # The portal's address as officers' browsers reach it (the provider sends them back).
    public_url: str
    development_secret: str | None = None


@dataclass
class Context:
    pool: Callable[[], asyncpg.Pool]
    complaints: ComplaintsClient
    permits: PermitsClient
    health: HealthClient
    clock: Callable[[], datetime]
    draft_idle: timedelta
    notifications: NotificationsClient
    integration: IntegrationClient
    # The map on the desa page, when the regency has a tile server (PORTAL_MAP_TILES_URL).
    tiles: TileServer | None = None
    officers: OfficerAccess | None = None
    # The key of the citizen and contact references (the audit rows of an export name
    # the citizen by them, never by NIK or contact).
    citizen_key: str = ""

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        found = (self.complaints, self.permits, self.health, self.notifications, self.integration)
        provider = self.officers.provider if self.officers else None
        return (*found, provider) if provider else found


def session_key(session_id: str) -> str:
    """How a draft is found: a hash of the session cookie, never the cookie itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()


async def stored(ctx: Context, session_id: str, journey: str) -> Draft:
    """The session's draft of `journey` (empty when there is none or it went idle)."""
    fresh_since = ctx.clock() - ctx.draft_idle
    return Draft(await repository.load(ctx.pool(), session_key(session_id), journey, fresh_since))


async def keep(ctx: Context, session_id: str, journey: str, answers: Mapping[str, Any]) -> None:
    await repository.save(ctx.pool(), session_key(session_id), journey, dict(answers), ctx.clock())


async def forget(ctx: Context, session_id: str, journey: str) -> None:
    await repository.delete(ctx.pool(), session_key(session_id), journey)


async def draft(ctx: Context, session_id: str) -> Draft:
    return await stored(ctx, session_id, LAPOR)


async def _save(ctx: Context, session_id: str, answers: Mapping[str, Any]) -> None:
    await keep(ctx, session_id, LAPOR, answers)


async def categories(ctx: Context) -> list[dict[str, str]]:
    return await ctx.complaints.categories()


async def answer(ctx: Context, session_id: str, step: str, form: Mapping[str, str]) -> tuple[Draft, Answer]:
    """Read one page's form; keep its answers when the page has no error."""
    current = await draft(ctx, session_id)
    offered = {c["code"] for c in await categories(ctx)} if step == "kategori" else set()
    result = domain.read_page(step, form, current, offered)
    if not result.errors:
        current.update(result.values)
        await _save(ctx, session_id, current)
    return current, result


async def add_photo(ctx: Context, session_id: str, content: bytes, filename: str, media_type: str) -> Draft:
    """Send a photo on to the complaints service at once (it keeps it re-encoded without
    EXIF); the draft keeps only the id it answers. `Refused` carries its reason."""
    current = await draft(ctx, session_id)
    if len(current.photos) >= domain.MAX_PHOTOS:
        return current
    photo_id = await ctx.complaints.upload_photo(content, filename, media_type)
    current["foto"] = [*current.photos, photo_id]
    await _save(ctx, session_id, current)
    return current


async def photos_done(ctx: Context, session_id: str) -> Draft:
    current = await draft(ctx, session_id)
    current["foto_selesai"] = True
    await _save(ctx, session_id, current)
    return current


async def submit(ctx: Context, session_id: str, locale: str) -> str:
    """File the complaint; the draft goes once the service has it. The tracking code."""
    current = await draft(ctx, session_id)
    code = await ctx.complaints.file(domain.complaint_body(current, locale))
    await forget(ctx, session_id, LAPOR)
    return code


@dataclass
class Tracked:
    """What Lacak shows of a case, whichever service holds it."""

    code: str
    service: str
    status: str
    title: str | None = None
    lines: list[Line] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


async def track(ctx: Context, code: str, service: str) -> Tracked | None:
    """The case behind a code from the service its prefix names; None when unknown.
    `Unavailable` when that service does not answer (other services are not asked)."""
    if service != "health":
        fetch, title = {
            "complaints": (ctx.complaints.complaint, "category_name"),
            "permits": (ctx.permits.application, "permit_type_name"),
        }[service]
        case = await fetch(code)
        if case is None:
            return None
        lines = domain.history_lines(service, case.get("history", []))
        facts = application_facts(case) if service == "permits" else _complaint_facts(case)
        return Tracked(code, service, case["status"], title=case.get(title), lines=lines, facts=facts)
    found = await ctx.health.appointment(code)
    if found is None:
        return None
    return Tracked(
        code,
        service,
        found["status"],
        title=found.get("polyclinic"),
        facts={"queue_code": found.get("queue_code"), "estimated_at": found.get("estimated_at")},
    )


def _complaint_facts(case: dict[str, Any]) -> dict[str, Any]:
    """What Lacak shows of a complaint besides its history: the photo of the finished
    work it was resolved with, by its id."""
    photo = case.get("resolution_photo") or {}
    return {"resolution_photo": photo.get("id")}


async def resolution_photo(ctx: Context, code: str) -> tuple[Download, str] | None:
    """The photo of the finished work of the complaint `code` (a complaint's code, as
    Lacak checked it), with its id; None when it has none to show."""
    case = await ctx.complaints.complaint(code)
    photo_id = _complaint_facts(case)["resolution_photo"] if case else None
    if photo_id is None:
        return None
    found = await ctx.complaints.resolution_photo(code)
    return (found, str(photo_id)) if found else None


async def purge_idle_drafts(ctx: Context) -> int:
    return await repository.purge_idle(ctx.pool(), ctx.clock() - ctx.draft_idle)


async def map_tile(ctx: Context, z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """A tile of the desa page's map, when the regency has a tile server and the tile is
    one of the regency's at a zoom the map offers."""
    if ctx.tiles is None or not tile_in_regency(z, x, y):
        return None
    return await ctx.tiles.tile(z, x, y)
