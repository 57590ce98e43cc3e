"""Use cases of the permits service. Each runs one unit of work: load the application
(row-locked), call the domain, save it and stage its events in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

import asyncpg

from services.permits.catalogue import Catalogue
from services.permits.domain import OPEN_STATUSES, Applicant, Application, Document, SlaPolicy
from services.permits.repository import ApplicationRepository, ListFilter
from shared.kit.attachments import Attachment, AttachmentKind, Attachments
from shared.kit.auth import Officer
from shared.kit.citizen import Citizen
from shared.kit.errors import InvalidField, NotFound
from shared.kit.privacy import citizen_ref, contact_ref_for, contact_refs
from shared.kit.usecase import UseCaseContext
from shared.reference import WorkingCalendar
from shared.schemas import permits as schema

TRACKING_CODE_KEY = "applications_tracking_code_key"  # unique constraint (migrations/001)


def _missing(tracking_code: str) -> str:
    return f"no application with tracking code {tracking_code}"


def _ignore(_: Application) -> None:
    return None


@dataclass
class Context(UseCaseContext[ApplicationRepository]):
    """What the use cases need besides the kit's (`UseCaseContext`)."""

    catalogue: Catalogue
    calendar: WorkingCalendar
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    # Called after the commit of every decision (approve, reject, deemed approval).
    on_decision: Callable[[Application], None] = _ignore

    topic: ClassVar[str] = schema.TOPIC
    source: ClassVar[str] = schema.SOURCE

    def repository(self, conn: asyncpg.Connection) -> ApplicationRepository:
        return ApplicationRepository(conn, self.catalogue)


@dataclass(frozen=True)
class SubmitApplication:
    """What the applicant submits: `Application.submit`'s own arguments (the permit type by
    its code)."""

    permit_type: str
    applicant: Applicant
    desa_code: str
    kecamatan_code: str
    details: dict[str, Any]
    documents: list[DocumentGiven]
    locale: str = "id"
    renewal_of: str | None = None


@dataclass(frozen=True)
class DocumentGiven:
    """A document as the applicant names it: by the id of its upload to this service
    (`upload_document`), or by a reference to the regency's own document store."""

    code: str
    ref: str | None = None
    upload: uuid.UUID | None = None


DOCUMENTS_FIELD = "documents"


async def upload_document(ctx: Context, data: bytes) -> Attachment:
    """Keep a document for an application about to be submitted (or completed): a PDF
    that parses, or a JPEG/PNG scan re-encoded without its metadata."""
    return await ctx.attachments.stage(AttachmentKind.DOCUMENT, data)


async def _documents(ctx: Context, given: Sequence[DocumentGiven]) -> list[Document]:
    """The documents `given`, their uploads found (a 422 on each that is not usable)."""
    uploaded = [(i, g.upload) for i, g in enumerate(given) if g.upload is not None]
    found = await ctx.attachments.staged(
        AttachmentKind.DOCUMENT,
        [u for _, u in uploaded],
        [(DOCUMENTS_FIELD, i, "upload") for i, _ in uploaded],
    )
    files = {a.id: a for a in found}
    return [Document(g.code, g.ref, files[g.upload].ref(g.code) if g.upload else None) for g in given]


async def _claim(conn: asyncpg.Connection, documents: Sequence[Document], tracking_code: str) -> None:
    files = [d.file for d in documents if d.file is not None]
    await Attachments.claim(conn, AttachmentKind.DOCUMENT, files, tracking_code, DOCUMENTS_FIELD)


async def submit(ctx: Context, cmd: SubmitApplication) -> Application:
    permit_type = ctx.catalogue.permit_types.get(cmd.permit_type)
    if permit_type is None:
        raise InvalidField(
            "permit_type",
            f"unknown permit type '{cmd.permit_type}'; one of: {', '.join(ctx.catalogue.permit_types)}"
            " (GET /permit-types)",
        )
    # NIK for people, NIB for businesses: the same keyed HMAC, so the integration view
    # can join an applicant's timeline without ever seeing the number.
    ref = citizen_ref(cmd.applicant.identifier, ctx.platform.citizen_ref_key.get_secret_value())
    documents = await _documents(ctx, cmd.documents)

    def new() -> Application:
        return Application.submit(
            **{**vars(cmd), "permit_type": permit_type, "documents": documents},
            citizen_ref=ref,
            kbli=ctx.catalogue.kbli,
            now=ctx.clock(),
            calendar=ctx.calendar,
            policy=ctx.policy,
            contact=ctx.contact_for(cmd.applicant),
            contact_ref=contact_ref_for(ctx.platform, phone=cmd.applicant.phone, email=cmd.applicant.email),
        )

    return await ctx.create(
        new, constraint=TRACKING_CODE_KEY, also=lambda a, conn: _claim(conn, documents, a.tracking_code)
    )


async def _act(
    ctx: Context, tracking_code: str, command: Callable[[Application, ApplicationRepository], object]
) -> Application:
    """The context's `act`, with the applicant's contact sealed afresh for the events, the
    repository lent to the command (issuing draws a permit number with it) and
    `on_decision` told after the commit of a decision."""

    def run(a: Application, repo: ApplicationRepository) -> object:
        a.contact = ctx.contact_for(a.applicant)
        return command(a, repo)

    application = await ctx.act(tracking_code, run, missing=_missing(tracking_code))
    if application.decided_now:
        ctx.on_decision(application)
    return application


async def check_documents(
    ctx: Context,
    tracking_code: str,
    officer: Officer,
    complete: bool,
    missing: Sequence[str],
    note: str | None,
) -> Application:
    def command(a: Application, _: ApplicationRepository) -> None:
        if complete:
            if missing:
                raise InvalidField("missing", "a complete check lists no missing documents")
            a.verify_documents(officer.subject, ctx.clock())
        else:
            a.return_documents(officer.subject, ctx.clock(), ctx.calendar, missing, note)

    return await _act(ctx, tracking_code, command)


async def resubmit(
    ctx: Context, tracking_code: str, given: Sequence[DocumentGiven], note: str | None, citizen: Citizen
) -> Application:
    """Only the applicant sends documents again: a session proving the phone or email
    they gave. Anyone else gets the answer an unknown code gets."""
    documents = await _documents(ctx, given)
    key = ctx.platform.citizen_ref_key.get_secret_value()

    async def command(a: Application, repo: ApplicationRepository) -> None:
        if citizen.contact_ref not in contact_refs(key, phone=a.applicant.phone, email=a.applicant.email):
            raise NotFound(_missing(tracking_code))
        a.resubmit(ctx.clock(), ctx.calendar, ctx.policy, documents, note)
        await _claim(repo.conn, documents, a.tracking_code)

    return await _act(ctx, tracking_code, command)


async def schedule_inspection(
    ctx: Context,
    tracking_code: str,
    officer: Officer,
    scheduled_for: datetime,
    inspector: str,
    note: str | None,
) -> Application:
    return await _act(
        ctx,
        tracking_code,
        lambda a, _: a.schedule_inspection(
            officer.subject, ctx.clock(), ctx.calendar, scheduled_for, inspector, note
        ),
    )


async def record_inspection(
    ctx: Context,
    tracking_code: str,
    officer: Officer,
    result: str,
    findings: str | None,
    inspected_at: datetime | None,
) -> Application:
    return await _act(
        ctx,
        tracking_code,
        lambda a, _: a.record_inspection(officer.subject, ctx.clock(), result, findings, inspected_at),
    )


async def approve(ctx: Context, tracking_code: str, officer: Officer, note: str | None) -> Application:
    return await _act(
        ctx, tracking_code, lambda a, _: a.approve(officer.subject, ctx.clock(), ctx.calendar, note)
    )


async def reject(
    ctx: Context, tracking_code: str, officer: Officer, reasons: Sequence[str], note: str | None
) -> Application:
    return await _act(
        ctx, tracking_code, lambda a, _: a.reject(officer.subject, ctx.clock(), ctx.calendar, reasons, note)
    )


async def issue(
    ctx: Context, tracking_code: str, officer: Officer, valid_until: date | None = None
) -> Application:
    async def command(a: Application, repo: ApplicationRepository) -> None:
        now = ctx.clock()
        a.ensure_can("issue")  # before taking a number, so refusals consume none
        year = ctx.calendar.local_date(now).year
        sequence = await repo.next_sequence(a.permit_type.number_code, year)
        a.issue(officer.subject, now, ctx.calendar, sequence, valid_until)

    return await _act(ctx, tracking_code, command)


async def revoke(ctx: Context, tracking_code: str, officer: Officer, reason: str) -> Application:
    return await _act(ctx, tracking_code, lambda a, _: a.revoke(officer.subject, ctx.clock(), reason))


async def get(ctx: Context, tracking_code: str) -> Application:
    return await ctx.found(lambda repo: repo.get(tracking_code), _missing(tracking_code))


async def get_for_officer(ctx: Context, tracking_code: str) -> Application:
    """An application with its applicant's identity and documents: an audited read."""
    application = await get(ctx, tracking_code)
    await ctx.record_read([application.tracking_code])
    return application


async def document(ctx: Context, tracking_code: str, document_id: uuid.UUID) -> tuple[Attachment, bytes]:
    """An uploaded document of the application, for a permit officer: an audited read."""
    application = await get(ctx, tracking_code)
    found = await ctx.attachments.open(application.tracking_code, document_id)
    await ctx.record_read([application.tracking_code])
    return found


async def get_permit(ctx: Context, permit_number: str) -> Application:
    return await ctx.found(
        lambda repo: repo.by_permit_number(permit_number), f"no permit numbered {permit_number}"
    )


async def list_applications(ctx: Context, f: ListFilter) -> tuple[list[dict[str, Any]], int]:
    return await ctx.read(lambda repo: repo.list(f, ctx.clock()))


async def open_by_status(ctx: Context) -> list[tuple[str, str, int]]:
    """Open applications per permit type and status: every type of the catalogue in every
    open status (zeros included), and any other type that has open applications."""
    counts = {(code, status.value): 0 for code in ctx.catalogue.permit_types for status in OPEN_STATUSES}
    for permit_type, status, n in await ctx.read(ApplicationRepository.open_by_status):
        counts[permit_type, status] = n
    return [(permit_type, status, n) for (permit_type, status), n in counts.items()]


async def watch_sla(ctx: Context, limit: int = 200) -> int:
    """Emit due SLA warnings, breaches and deemed approvals; returns how many events
    were emitted. Each application is re-read FOR UPDATE and judged from its persisted
    clock, so a second instance running the same job emits nothing twice."""
    now = ctx.clock()
    due = await ctx.read(lambda repo: repo.with_sla_due(now, limit))
    return await _emit_due(ctx, due, lambda a, _: a.check_sla(now, ctx.calendar))


async def watch_expiry(ctx: Context, limit: int = 200) -> int:
    """Emit due renewal reminders (`expiring`) and expiries (`expired`), each once."""
    now = ctx.clock()
    due = await ctx.read(lambda repo: repo.with_expiry_due(now, limit))
    return await _emit_due(ctx, due, lambda a, _: a.check_expiry(now))


async def _emit_due(
    ctx: Context, codes: Iterable[str], check: Callable[[Application, ApplicationRepository], object]
) -> int:
    """Run a time-driven `check` on each application, one unit of work each; returns how
    many events they emitted."""
    emitted = 0
    for code in codes:
        emitted += len((await _act(ctx, code, check)).events)
    return emitted
