"""A citizen's data export, assembled here: the portal already holds a client of every
service and both ways of asking (the officer's token, the citizen's session), and, as
the one place that sees every answer, it alone can tell a whole document from a partial
one. Every service is asked at once (one away costs its timeout once); all must answer,
or there is no document (`Unavailable`: the 503 page with Retry-After), since a part
missing would read as "holds nothing about you".

Each service writes its read to its own audit trail under the export's id; the portal
writes the request before asking and the delivery once the document is whole, naming
the citizen by their references only (never the NIK or the contact).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.portal import ekspor_rules as rules
from services.portal import repository
from services.portal.antrean_cases import SignInNeeded, session_of, signed_in
from services.portal.clients import citizen_data
from services.portal.clients.base import Refused, Unavailable, Upstream
from services.portal.domain import Answer
from services.portal.handlers import Context
from services.portal.petugas_cases import Signed, as_officer
from shared.kit.audit import Actor
from shared.kit.privacy import citizen_ref, contact_refs

log = logging.getLogger(__name__)
# The answers that are the asker's, not the service's: sign in again, or not allowed.
ASKER_REFUSED = (401, 403)


@dataclass(frozen=True)
class Export:
    document: dict[str, Any]
    filename: str


def _upstream(ctx: Context, name: str) -> Upstream:
    return {upstream.name: upstream for upstream in ctx.upstreams}[name]


async def _part(upstream: Upstream, ask: Callable[[Upstream], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """One service's part; any refusal but the asker's is the service failing the export."""
    try:
        return await ask(upstream)
    except Refused as refused:
        if refused.status in ASKER_REFUSED:
            raise
        log.warning("export refused", extra={"upstream": upstream.name, "status": refused.status})
        raise Unavailable(upstream.name) from refused


async def _parts(
    ctx: Context, ask: Callable[[Upstream], Awaitable[dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Every service's part, asked at once; the asker's refusal first, then a service away."""
    answers = await asyncio.gather(
        *(_part(_upstream(ctx, name), ask) for name in rules.SERVICES), return_exceptions=True
    )
    failures = [a for a in answers if isinstance(a, BaseException)]
    for failure in sorted(failures, key=lambda f: isinstance(f, Unavailable)):
        raise failure
    return {
        name: answer for name, answer in zip(rules.SERVICES, answers, strict=True) if isinstance(answer, dict)
    }


async def _export(
    ctx: Context,
    actor: Actor,
    refs: list[str],
    ask: Callable[[Upstream, str], Awaitable[dict[str, Any]]],
    kind: str,
) -> Export:
    export_id = str(uuid.uuid4())
    records = rules.records(refs, export_id)
    await repository.audit_read(ctx.pool(), actor, records, [rules.REQUESTED])
    parts = await _parts(ctx, lambda upstream: ask(upstream, export_id))
    now = ctx.clock()
    document = rules.document(export_id, now, parts)
    await repository.audit_read(ctx.pool(), actor, records, [rules.DELIVERED, *document["services_answered"]])
    return Export(document, rules.filename(kind, export_id, now))


async def officer_export(
    ctx: Context, officer: Signed, actor: Actor, form: Mapping[str, str]
) -> tuple[Answer, Export | None]:
    """The data protection officer's export of the citizen the form names (by NIK, and
    the phone and email they gave): the form's errors, or the document."""
    result = rules.read_request(form)
    if result.errors:
        return result, None
    values = result.values
    refs = [
        citizen_ref(values["nik"], ctx.citizen_key),
        *contact_refs(ctx.citizen_key, phone=values.get("phone"), email=values.get("email")),
    ]

    async def ask(upstream: Upstream, export_id: str) -> dict[str, Any]:
        body = {**values, "export_id": export_id}
        return await as_officer(lambda: citizen_data.officer_export(upstream, officer.token, body))

    return result, await _export(ctx, actor, refs, ask, rules.OFFICER_FILE)


async def own_export(ctx: Context, session_id: str, actor: Actor) -> Export:
    """The signed-in citizen's export: what every service links to the contact they
    proved (never to the NIK the sign-in stated). `SignInNeeded` without a live session
    or when a service refuses it."""
    signin, session = await signed_in(ctx, session_id), await session_of(ctx, session_id)
    if signin is None or session is None:
        raise SignInNeeded
    contact = str(signin["kontak"])
    (ref,) = contact_refs(ctx.citizen_key, **{"email" if "@" in contact else "phone": contact})

    async def ask(upstream: Upstream, export_id: str) -> dict[str, Any]:
        return await citizen_data.own_export(upstream, session, contact, export_id)

    try:
        return await _export(
            ctx, dataclasses.replace(actor, subject=ref, role="citizen"), [ref], ask, rules.OWN_FILE
        )
    except Refused as refused:
        raise SignInNeeded from refused
