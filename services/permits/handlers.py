"""Use cases of the permits service. Each runs one unit of work: load the application
(row-locked), call the domain, save it and stage its events in the outbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.permits.catalogue import Catalogue
from services.permits.domain import Applicant, Application, Document, SlaPolicy
from services.permits.repository import ApplicationRepository, ListFilter
from shared.kit.auth import Officer
from shared.kit.errors import InvalidField, NotFound
from shared.kit.privacy import citizen_ref, seal_for_notifications
from shared.kit.settings import PlatformSettings
from shared.kit.uow import EventSource, unit_of_work
from shared.reference import WorkingCalendar
from shared.schemas import permits as schema


def utc_now() -> datetime:
    return datetime.now(UTC)


def _ignore(_: Application) -> None:
    return None


@dataclass
class Context:
    """What the use cases need; built once by the app, replaced freely in tests."""

    pool: Callable[[], asyncpg.Pool]
    platform: PlatformSettings
    catalogue: Catalogue
    calendar: WorkingCalendar
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    clock: Callable[[], datetime] = utc_now
    # Called after the commit of every decision (approve, reject, deemed approval).
    on_decision: Callable[[Application], None] = _ignore

    @property
    def origin(self) -> EventSource:
        return EventSource(schema.TOPIC, schema.SOURCE, self.platform.region)

    def contact_for(self, applicant: Applicant) -> schema.SealedContact | None:
        return seal_for_notifications(self.platform, phone=applicant.phone, email=applicant.email)


@dataclass(frozen=True)
class SubmitApplication:
    permit_type: str
    applicant: Applicant
    desa_code: str
    kecamatan_code: str
    details: dict[str, Any]
    documents: list[Document]
    locale: str = "id"
    renewal_of: str | None = None


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
    for _attempt in range(5):
        application = Application.submit(
            permit_type=permit_type,
            applicant=cmd.applicant,
            citizen_ref=ref,
            desa_code=cmd.desa_code,
            kecamatan_code=cmd.kecamatan_code,
            details=cmd.details,
            documents=cmd.documents,
            kbli=ctx.catalogue.kbli,
            locale=cmd.locale,
            now=ctx.clock(),
            calendar=ctx.calendar,
            policy=ctx.policy,
            contact=ctx.contact_for(cmd.applicant),
            renewal_of=cmd.renewal_of,
        )
        try:
            async with unit_of_work(ctx.pool(), ctx.origin) as uow:
                await ApplicationRepository(uow.conn, ctx.catalogue).add(application)
                await uow.emit(application.events, subject=str(application.id))
            return application
        except asyncpg.UniqueViolationError:
            continue  # tracking code collision (1 in 10^9 a month): draw another
    raise RuntimeError("could not allocate a unique tracking code")


async def _act(
    ctx: Context,
    tracking_code: str,
    command: Callable[[Application, ApplicationRepository], Any],
) -> Application:
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        repo = ApplicationRepository(uow.conn, ctx.catalogue)
        application = await repo.get(tracking_code, for_update=True)
        if application is None:
            raise NotFound(f"no application with tracking code {tracking_code}")
        undecided = application.decision is None
        application.contact = ctx.contact_for(application.applicant)
        result = command(application, repo)
        if hasattr(result, "__await__"):
            await result
        if application.events:
            await repo.save(application)
            await uow.emit(application.events, subject=str(application.id))
    if undecided and application.decision is not None:
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
    ctx: Context, tracking_code: str, documents: Sequence[Document], note: str | None
) -> Application:
    return await _act(
        ctx,
        tracking_code,
        lambda a, _: a.resubmit(ctx.clock(), ctx.calendar, ctx.policy, documents, note),
    )


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
    async with ctx.pool().acquire() as conn:
        application = await ApplicationRepository(conn, ctx.catalogue).get(tracking_code)
    if application is None:
        raise NotFound(f"no application with tracking code {tracking_code}")
    return application


async def get_permit(ctx: Context, permit_number: str) -> Application:
    async with ctx.pool().acquire() as conn:
        application = await ApplicationRepository(conn, ctx.catalogue).by_permit_number(permit_number)
    if application is None:
        raise NotFound(f"no permit numbered {permit_number}")
    return application


async def list_applications(ctx: Context, f: ListFilter) -> tuple[list[dict[str, Any]], int]:
    async with ctx.pool().acquire() as conn:
        return await ApplicationRepository(conn, ctx.catalogue).list(f, ctx.clock())


async def watch_sla(ctx: Context, limit: int = 200) -> int:
    """Emit due SLA warnings, breaches and deemed approvals; returns how many events
    were emitted. Each application is re-read FOR UPDATE and judged from its persisted
    clock, so a second instance running the same job emits nothing twice."""
    now = ctx.clock()
    async with ctx.pool().acquire() as conn:
        due = await ApplicationRepository(conn, ctx.catalogue).with_sla_due(now, limit)
    emitted = 0
    for code in due:
        application = await _act(ctx, code, lambda a, _: a.check_sla(now, ctx.calendar))
        emitted += len(application.events)
    return emitted


async def watch_expiry(ctx: Context, limit: int = 200) -> int:
    """Emit due renewal reminders (`expiring`) and expiries (`expired`), each once."""
    now = ctx.clock()
    async with ctx.pool().acquire() as conn:
        due = await ApplicationRepository(conn, ctx.catalogue).with_expiry_due(now, limit)
    emitted = 0
    for code in due:
        application = await _act(ctx, code, lambda a, _: a.check_expiry(now))
        emitted += len(application.events)
    return emitted
