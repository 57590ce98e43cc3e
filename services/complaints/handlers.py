"""Use cases of the complaints service. Each runs one unit of work: load the complaint
(row-locked), call the domain, save it and stage its events in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import asyncpg

from services.complaints import open311
from services.complaints.catalogue import Catalogue
from services.complaints.domain import RESOLUTION_PHOTO, Complaint, Reporter, SlaPolicy
from services.complaints.repository import ComplaintRepository, ListFilter
from shared.kit.attachments import Attachment, AttachmentKind, Attachments
from shared.kit.auth import Officer
from shared.kit.errors import Forbidden, InvalidField, NotFound
from shared.kit.privacy import citizen_ref, contact_ref_for
from shared.kit.usecase import UseCaseContext
from shared.reference import WorkingCalendar
from shared.schemas import complaints as schema
from shared.schemas.common import GeoPoint

TRACKING_CODE_KEY = "complaints_tracking_code_key"  # unique constraint (migrations/001)


def _missing(tracking_code: str) -> str:
    return f"no complaint with tracking code {tracking_code}"


@dataclass
class Context(UseCaseContext[ComplaintRepository]):
    """What the use cases need besides the kit's (`UseCaseContext`)."""

    catalogue: Catalogue
    calendar: WorkingCalendar
    policy: SlaPolicy = field(default_factory=SlaPolicy)

    topic: ClassVar[str] = schema.TOPIC
    source: ClassVar[str] = schema.SOURCE

    def repository(self, conn: asyncpg.Connection) -> ComplaintRepository:
        return ComplaintRepository(conn, self.catalogue)


@dataclass(frozen=True)
class FileComplaint:
    """What the citizen files: `Complaint.file`'s own arguments (the category by its code)."""

    kind: str
    category: str
    title: str
    description: str
    desa_code: str
    kecamatan_code: str
    anonymous: bool
    confidential: bool
    reporter: Reporter
    locale: str = "id"
    location: GeoPoint | None = None
    channel: str = "web"
    photos: list[uuid.UUID] = field(default_factory=list)  # staged uploads (upload_photo)


PHOTOS_FIELD = "photos"
PHOTO_FIELD = "photo"  # a resolution's photo, in ResolveIn


async def upload_photo(ctx: Context, data: bytes) -> Attachment:
    """Keep a photo for a complaint the citizen is about to file (GPS and every other
    metadata removed); the filing claims it by its id."""
    return await ctx.attachments.stage(AttachmentKind.PHOTO, data)


Also = Callable[[Complaint, asyncpg.Connection], Awaitable[None]]


async def file_complaint(ctx: Context, cmd: FileComplaint, *, also: Also | None = None) -> Complaint:
    """File a complaint; `also` records more of the filing in its unit of work (where an
    Open311 report came from)."""
    category = ctx.catalogue.categories.get(cmd.category)
    if category is None:
        raise InvalidField("category", f"unknown category '{cmd.category}'; see GET /categories")
    locations = [(PHOTOS_FIELD, i) for i in range(len(cmd.photos))]
    photos = await ctx.attachments.staged(AttachmentKind.PHOTO, cmd.photos, locations)
    refs = [p.ref() for p in photos]
    ref = (
        citizen_ref(cmd.reporter.nik, ctx.platform.citizen_ref_key.get_secret_value())
        if cmd.reporter.nik and not cmd.anonymous
        else None
    )

    def new() -> Complaint:
        return Complaint.file(
            **{**vars(cmd), "category": category, "photos": refs},
            citizen_ref=ref,
            now=ctx.clock(),
            calendar=ctx.calendar,
            policy=ctx.policy,
            contact=ctx.contact_for(cmd.reporter),
            seal_text=ctx.text_sealer_for(cmd.reporter),
            contact_ref=contact_ref_for(ctx.platform, phone=cmd.reporter.phone, email=cmd.reporter.email),
        )

    async def claim_photos(complaint: Complaint, conn: asyncpg.Connection) -> None:
        await Attachments.claim(conn, AttachmentKind.PHOTO, photos, complaint.tracking_code, PHOTOS_FIELD)
        if also is not None:
            await also(complaint, conn)

    return await ctx.create(new, constraint=TRACKING_CODE_KEY, also=claim_photos)


async def photo(
    ctx: Context, tracking_code: str, photo_id: uuid.UUID, officer: Officer
) -> tuple[Attachment, bytes]:
    """A complaint's photo, for an officer who may see the complaint: an audited read."""
    complaint = await get(ctx, tracking_code)
    _must_be_opd_of(officer, complaint)
    found = await ctx.attachments.open(tracking_code, photo_id)
    await ctx.record_read([tracking_code])
    return found


async def resolution_photo(ctx: Context, tracking_code: str) -> tuple[Attachment, bytes]:
    """The photo of the finished work, for whoever follows the complaint by its code (as
    its status is); none on a confidential complaint, whose content stays hidden."""
    complaint = await get(ctx, tracking_code)
    if complaint.resolution_photo is None or complaint.confidential:
        raise NotFound(f"no photo of the finished work on {tracking_code}")
    return await ctx.attachments.open(tracking_code, complaint.resolution_photo)


# The OPD rule: an OPD officer sees and works only the complaints disposed to their OPD;
# the coordinator (and admin) see and work all of them.


NO_OPD = "this account belongs to no OPD: the administrator puts OPD officers in their OPD's group"


def _must_be_opd_of(officer: Officer, complaint: Complaint) -> None:
    if officer.may_act_for_opd(complaint.opd):
        return
    if officer.opd is None:
        raise Forbidden(NO_OPD)
    raise Forbidden(f"complaint {complaint.tracking_code} is disposed to another OPD")


def _opd_scope(officer: Officer, f: ListFilter) -> ListFilter:
    """The coordinator (and admin) see every OPD's complaints; an OPD officer only their
    OPD's, and none without an OPD."""
    if officer.has("admin", "coordinator"):
        return f
    if officer.opd is None:
        raise Forbidden(NO_OPD)
    return replace(f, opd=officer.opd)


async def _act(
    ctx: Context,
    tracking_code: str,
    command: Callable[[Complaint], object],
    *,
    opd_of: Officer | None = None,
    also: Also | None = None,
) -> Complaint:
    """The context's `act`, with the reporter's contact sealed afresh for the events and, given
    `opd_of`, the OPD rule checked for that officer first; `also` runs after the command in
    the same unit of work (claiming an upload with the change, as `create` does)."""

    def run(c: Complaint, repo: ComplaintRepository) -> object:
        if opd_of is not None:
            _must_be_opd_of(opd_of, c)
        c.contact, c.seal_text = ctx.contact_for(c.reporter), ctx.text_sealer_for(c.reporter)
        done = command(c)
        return also(c, repo.conn) if also is not None else done

    return await ctx.act(tracking_code, run, missing=_missing(tracking_code))


async def verify(ctx: Context, tracking_code: str, officer: Officer) -> Complaint:
    return await _act(ctx, tracking_code, lambda c: c.verify(officer.subject, ctx.clock()))


async def dispatch(
    ctx: Context, tracking_code: str, officer: Officer, opd_code: str | None, note: str | None
) -> Complaint:
    def command(c: Complaint) -> None:
        code = opd_code or c.category.opd
        opd = ctx.catalogue.opds.get(code)
        if opd is None:
            raise InvalidField("opd", f"unknown OPD '{code}'; see GET /opds")
        c.dispatch(officer.subject, opd, ctx.clock(), ctx.calendar, ctx.policy, note)

    return await _act(ctx, tracking_code, command)


async def update_progress(ctx: Context, tracking_code: str, officer: Officer, note: str | None) -> Complaint:
    return await _act(
        ctx, tracking_code, lambda c: c.update_progress(officer.subject, ctx.clock(), note), opd_of=officer
    )


async def respond(ctx: Context, tracking_code: str, officer: Officer, response: str) -> Complaint:
    return await _act(
        ctx, tracking_code, lambda c: c.respond(officer.subject, ctx.clock(), response), opd_of=officer
    )


async def resolve(
    ctx: Context, tracking_code: str, officer: Officer, resolution: str | None, photo: uuid.UUID | None = None
) -> Complaint:
    """Resolved, with an optional photo of the finished work: an upload of
    POST /complaints/photos the complaint claims in the same unit of work."""
    staged = await ctx.attachments.staged(AttachmentKind.PHOTO, [photo] if photo else [], [(PHOTO_FIELD,)])
    ref = staged[0].ref(RESOLUTION_PHOTO) if staged else None

    def command(c: Complaint) -> None:
        c.resolve(officer.subject, ctx.clock(), ctx.policy, resolution, ref)

    async def claim(c: Complaint, conn: asyncpg.Connection) -> None:
        await Attachments.claim(
            conn, AttachmentKind.PHOTO, [ref] if ref else [], c.tracking_code, PHOTO_FIELD
        )

    return await _act(ctx, tracking_code, command, opd_of=officer, also=claim)


async def reject(
    ctx: Context, tracking_code: str, officer: Officer, reason_code: str, reason: str | None
) -> Complaint:
    return await _act(
        ctx, tracking_code, lambda c: c.reject(officer.subject, ctx.clock(), reason_code, reason)
    )


async def merge(ctx: Context, tracking_code: str, officer: Officer, duplicate_of: str) -> Complaint:
    """Two complaints in one unit of work (not `act`): both are locked, in a fixed order."""
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        # Lock both in a fixed order so two crossing merges cannot deadlock.
        first, second = sorted([tracking_code, duplicate_of])
        loaded = {code: await repo.get(code, for_update=True) for code in (first, second)}
        complaint = loaded[tracking_code]
        if complaint is None:
            raise NotFound(_missing(tracking_code))
        original = loaded[duplicate_of]
        if original is None:
            raise InvalidField("duplicate_of", _missing(duplicate_of))
        complaint.contact = ctx.contact_for(complaint.reporter)
        complaint.merge_into(officer.subject, ctx.clock(), original)
        await repo.save(complaint)
        await uow.emit(complaint.events, subject=str(complaint.id))
    return complaint


async def rate(ctx: Context, tracking_code: str, rating: int, comment: str | None) -> Complaint:
    return await _act(ctx, tracking_code, lambda c: c.rate(ctx.clock(), rating, comment))


async def reopen(ctx: Context, tracking_code: str, reason: str | None) -> Complaint:
    return await _act(ctx, tracking_code, lambda c: c.reopen(ctx.clock(), ctx.calendar, ctx.policy, reason))


async def get(ctx: Context, tracking_code: str) -> Complaint:
    return await ctx.found(lambda repo: repo.get(tracking_code), _missing(tracking_code))


async def follow(ctx: Context, tracking_code: str) -> tuple[Complaint, Complaint | None]:
    """A complaint as its filer follows it: with the one it was merged into, if any."""

    async def both(repo: ComplaintRepository) -> tuple[Complaint, Complaint | None] | None:
        complaint = await repo.get(tracking_code)
        if complaint is None:
            return None
        return complaint, await repo.get(complaint.duplicate_of) if complaint.duplicate_of else None

    return await ctx.found(both, _missing(tracking_code))


async def get_for_officer(
    ctx: Context, tracking_code: str, officer: Officer
) -> tuple[Complaint, list[Attachment]]:
    """A complaint with its reporter's contact, what they wrote and their photos: an
    audited read."""
    complaint = await get(ctx, tracking_code)
    _must_be_opd_of(officer, complaint)
    await ctx.record_read([complaint.tracking_code])
    return complaint, await ctx.attachments.listed(complaint.tracking_code)


async def list_complaints(ctx: Context, f: ListFilter, officer: Officer) -> tuple[list[dict[str, Any]], int]:
    """Officers' work list, within the officer's OPD scope."""
    return await ctx.read(lambda repo: repo.list(_opd_scope(officer, f), ctx.clock()))


async def open_by_opd(ctx: Context) -> list[tuple[str, int]]:
    return await ctx.read(ComplaintRepository.open_by_opd)


async def watch_sla(ctx: Context, limit: int = 200) -> int:
    """Emit due SLA warnings and breaches; returns how many events were emitted."""
    now = ctx.clock()
    due = await ctx.read(lambda repo: repo.with_sla_due(now, limit))
    emitted = 0
    for code in due:
        complaint = await _act(ctx, code, lambda c: c.check_sla(now))
        emitted += len(complaint.events)
    return emitted


# ----- Open311 GeoReport v2 (open311.py maps; these are its use cases) ------------------------

UNKNOWN_KEY = "api_key is unknown or revoked; ask the regency's administrator for one"
MISSING_KEY = "api_key is required to file a request; ask the regency's administrator for one"


async def issue_api_key(ctx: Context, client: str, issued_by: str) -> tuple[open311.ApiKey, str]:
    """A new key for a client application: kept hashed, returned in clear this once."""
    secret = open311.new_api_key()
    key = open311.ApiKey(uuid.uuid4(), client, open311.key_prefix(secret), ctx.clock(), issued_by)
    async with ctx.unit_of_work() as uow:
        await ctx.repository(uow.conn).add_api_key(key, open311.key_hash(secret))
        uow.touch(f"open311-key:{key.id}")
    return key, secret


async def revoke_api_key(ctx: Context, key_id: uuid.UUID, revoked_by: str) -> open311.ApiKey:
    async with ctx.unit_of_work() as uow:
        key = await ctx.repository(uow.conn).revoke_api_key(key_id, revoked_by, ctx.clock())
        if key is None:
            raise NotFound(f"no Open311 API key {key_id}")
        uow.touch(f"open311-key:{key.id}")
    return key


async def api_keys(ctx: Context) -> list[open311.ApiKey]:
    return await ctx.read(ComplaintRepository.api_keys)


async def client_of(ctx: Context, api_key: str | None) -> open311.ApiKey:
    """The client application `api_key` belongs to; 403 for none, an unknown or a
    revoked one."""
    if not api_key:
        raise Forbidden(MISSING_KEY)
    key = await ctx.read(lambda repo: repo.active_api_key(open311.key_hash(api_key)))
    if key is None:
        raise Forbidden(UNKNOWN_KEY)
    return key


async def file_open311(
    ctx: Context, cmd: FileComplaint, client: open311.ApiKey
) -> tuple[Complaint, uuid.UUID]:
    """An Open311 report filed as any complaint is, with the token the client follows it
    by and the key that sent it recorded in the same unit of work."""
    token = uuid.uuid4()

    async def record(complaint: Complaint, conn: asyncpg.Connection) -> None:
        await ctx.repository(conn).add_open311_request(
            token, complaint.tracking_code, client.id, complaint.filed_at
        )

    complaint = await file_complaint(ctx, replace(cmd, channel="open311"), also=record)
    return complaint, token


async def open311_token(ctx: Context, token: uuid.UUID) -> str:
    return await ctx.found(lambda repo: repo.open311_token(token), f"no request with token {token}")


async def open311_requests(ctx: Context, query: open311.RequestQuery) -> list[dict[str, Any]]:
    return await ctx.read(lambda repo: repo.open311_requests(query))
