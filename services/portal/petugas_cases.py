"""The officers' workspace's use cases: signing in with the identity provider (or, in
development without one, with the kit's development tokens), the officer's session kept
in the portal's database and its access token renewed before it expires, signing out
(the provider's session too), and the complaints service's officer API called with the
officer's own token.

Authorisation stays in the services: a 403 of theirs is `NotAllowed` (the page says the
officer is not authorised), a 401 ends the session (`SignInNeeded`).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt

from services.portal import petugas_rules as rules
from services.portal import repository
from services.portal.antrean_cases import seal, stored, unseal
from services.portal.clients.base import Download, Refused
from services.portal.clients.identity import Tokens
from services.portal.domain import Answer
from services.portal.handlers import Context, OfficerAccess, session_key
from shared.kit.auth import InvalidToken, Officer, OidcTokens, ProviderUnavailable, issue_token
from shared.kit.codes import COMPLAINT_PREFIX, PERMIT_PREFIX, is_public_code, normalise_code

T = TypeVar("T")
PAGE_SIZE = 20
# What the service's answers mean for the page.
UNAUTHENTICATED, FORBIDDEN, NOT_FOUND = 401, 403, 404


class SignInNeeded(Exception):
    """No live officer session: sign in, then come back."""


class SignInFailed(Exception):
    """The provider's redirect did not make a session (a stale or forged state, a code
    the provider refused, tokens that do not check out); the reason is for the log."""


class NotAllowed(Exception):
    """The service refused the officer (403): authorisation is the services' to decide."""


class NotFound(Exception):
    """No such complaint, or none this officer may know of."""


@dataclass(frozen=True)
class Signed:
    """The signed-in officer as a page needs them."""

    cookie: str
    subject: str
    name: str
    roles: tuple[str, ...]
    opd: str | None
    token: str
    facility: str | None = None

    @property
    def role(self) -> rules.Role | None:
        return rules.role_of(self.roles)


def _access(ctx: Context) -> OfficerAccess:
    assert ctx.officers is not None, "the portal is built with officers' access"
    return ctx.officers


def development_sign_in(ctx: Context) -> bool:
    """Whether this portal offers the development sign-in: no provider, and a secret for
    development tokens (never in production: the app gives none there)."""
    access = _access(ctx)
    return access.provider is None and access.development_secret is not None


# ----- signing in ------------------------------------------------------------------------------


async def begin(ctx: Context, browser: str, then: str | None) -> str:
    """Start the authorization code flow: the provider's address to send the browser to.
    State, nonce and PKCE verifier wait in the drafts under this browser's cookie."""
    provider = _access(ctx).provider
    assert provider is not None
    verifier, state, nonce = rules.pkce_verifier(), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    pending = {"state": state, "nonce": nonce, "verifier": verifier, "lanjut": rules.return_path(then)}
    await repository.save(ctx.pool(), session_key(browser), rules.PENDING, pending, ctx.clock())
    return await provider.authorization_url(
        state=state, nonce=nonce, challenge=rules.pkce_challenge(verifier)
    )


async def finish(ctx: Context, browser: str, code: str, state: str) -> tuple[str, str]:
    """The provider's redirect back: (the new session's cookie, the page to go on to)."""
    access = _access(ctx)
    assert access.provider is not None
    pending = await stored(ctx, browser, rules.PENDING)
    await repository.delete(ctx.pool(), session_key(browser), rules.PENDING)
    if not pending.get("state") or not hmac.compare_digest(str(pending["state"]), state):
        raise SignInFailed("state unknown to this browser")
    try:
        tokens = await access.provider.exchange(code, pending["verifier"], ctx.clock())
    except Refused as refused:
        raise SignInFailed(f"token endpoint refused the code ({refused.status})") from None
    claims = await _id_claims(access, tokens.id_token, pending["nonce"])
    officer = await _officer(access, tokens.access)
    name = str(claims.get("name") or claims.get("preferred_username") or officer.subject)
    return await _open(ctx, officer, name, tokens), rules.return_path(pending.get("lanjut"))


async def _id_claims(access: OfficerAccess, id_token: str | None, nonce: str) -> dict[str, Any]:
    """The ID token's claims once it is the provider's, for this client and this sign-in."""
    if id_token is None or not isinstance(access.tokens, OidcTokens) or access.provider is None:
        raise SignInFailed("no ID token")
    try:
        key, algorithm = await access.tokens.signing_key(id_token)
        claims = jwt.decode(
            id_token,
            key.key,
            algorithms=[algorithm],
            audience=access.provider.client_id,
            issuer=access.provider.issuer,
            options={"require": ["exp", "iat", "sub", "nonce"]},
        )
    except (InvalidToken, ProviderUnavailable, jwt.PyJWTError) as exc:
        raise SignInFailed(f"ID token refused: {exc}") from None
    if not hmac.compare_digest(str(claims["nonce"]), nonce):
        raise SignInFailed("ID token of another sign-in")
    return dict(claims)


async def _officer(access: OfficerAccess, token: str) -> Officer:
    """Who the access token names, checked as the services will check it."""
    try:
        return await access.tokens.verify(token)
    except (InvalidToken, ProviderUnavailable) as exc:
        raise SignInFailed(f"access token refused: {exc}") from None


async def sign_in_for_development(
    ctx: Context, role: str, opd: str | None, name: str, facility: str | None = None
) -> str:
    """A session with a development token (HS256, the kit's `make token`), which the
    services accept only without an identity provider and never in production."""
    access = _access(ctx)
    if not development_sign_in(ctx) or access.development_secret is None:
        raise SignInFailed("no development sign-in here")
    subject = "dev-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or role)
    hours = access.policy.lifetime.total_seconds() / 3600
    token = issue_token(
        access.development_secret, subject=subject, role=role, opd=opd, facility=facility, hours=hours
    )
    officer = await _officer(access, token)
    tokens = Tokens(token, access.policy.ends_at(ctx.clock()), refresh=None, id_token=None)
    return await _open(ctx, officer, name or subject, tokens)


async def _open(ctx: Context, officer: Officer, name: str, tokens: Tokens) -> str:
    """A new session under a new cookie (never the one the browser had before)."""
    cookie = secrets.token_urlsafe(32)
    now = ctx.clock()
    session = {
        "subject": officer.subject,
        "name": name,
        "roles": sorted(officer.roles),
        "opd": officer.opd,
        "facility": officer.facility,
        "tokens": seal(json.dumps(tokens.as_dict()), cookie),
        "access_expires_at": tokens.expires_at,
        "created_at": now,
        "last_seen_at": now,
    }
    await repository.add_officer_session(ctx.pool(), session_key(cookie), session)
    return cookie


# ----- the session --------------------------------------------------------------------------


def _tokens(row: Mapping[str, Any], cookie: str) -> dict[str, Any] | None:
    opened = unseal(row["tokens"], cookie)
    return json.loads(opened) if opened else None


async def current(ctx: Context, cookie: str | None) -> Signed:
    """The officer of this cookie while their session lives, with an access token good
    for a while yet (renewed first when it is about to expire); else `SignInNeeded`."""
    if not cookie:
        raise SignInNeeded
    access, key, now = _access(ctx), session_key(cookie), ctx.clock()
    row = await repository.officer_session(ctx.pool(), key)
    if row is None:
        raise SignInNeeded
    tokens = _tokens(row, cookie)
    if tokens is None or not access.policy.alive(row["created_at"], row["last_seen_at"], now):
        await repository.end_officer_session(ctx.pool(), key)
        raise SignInNeeded
    await repository.touch_officer_session(ctx.pool(), key, now)
    if rules.needs_refresh(row["access_expires_at"], now):
        tokens = await _renew(ctx, cookie)
    return Signed(
        cookie,
        row["subject"],
        row["name"],
        tuple(row["roles"]),
        row["opd"],
        tokens["access"],
        row["facility"],
    )


async def _renew(ctx: Context, cookie: str) -> dict[str, Any]:
    """Renew the access token under the session's lock; a session the provider no longer
    renews (or a development one at its end) is over."""
    access, key, now = _access(ctx), session_key(cookie), ctx.clock()
    async with repository.renewing_officer_session(ctx.pool(), key) as (row, keep):
        tokens = _tokens(row, cookie) if row else None
        if row is not None and tokens is not None and not rules.needs_refresh(row["access_expires_at"], now):
            return tokens  # another page renewed it meanwhile
        if tokens is not None and access.provider is not None and tokens.get("refresh"):
            try:
                fresh = await access.provider.refresh(tokens["refresh"], now)
            except Refused:
                fresh = None
            if fresh is not None:
                renewed = {
                    "access": fresh.access,
                    "refresh": fresh.refresh or tokens["refresh"],
                    "id": fresh.id_token or tokens.get("id"),
                }
                await keep(seal(json.dumps(renewed), cookie), fresh.expires_at)
                return renewed
    await repository.end_officer_session(ctx.pool(), key)
    raise SignInNeeded


async def sign_out(ctx: Context, cookie: str | None, after: str) -> str | None:
    """End the session here, then the provider's: the address that ends it (None in
    development, or without a session)."""
    if not cookie:
        return None
    row = await repository.end_officer_session(ctx.pool(), session_key(cookie))
    provider = _access(ctx).provider
    if row is None or provider is None:
        return None
    tokens = _tokens(row, cookie) or {}
    return await provider.logout_url(tokens.get("id"), after)


async def purge_ended_sessions(ctx: Context) -> int:
    """Sessions ended, and the forms kept for a sign-in that never came."""
    policy, now = _access(ctx).policy, ctx.clock()
    await repository.purge_journey(ctx.pool(), rules.KEPT_FORM, now - rules.KEPT_FORM_FOR)
    return await repository.purge_officer_sessions(ctx.pool(), now - policy.idle, now - policy.lifetime)


# ----- a form sent after the session ended --------------------------------------------------


def _kept_key(browser: str, kept_id: str) -> str:
    # Bound to the browser's own cookie too: an address with the id is no use elsewhere.
    return session_key(f"{browser}:{kept_id}")


async def keep_form(ctx: Context, browser: str, path: str, sent: Mapping[str, list[str]]) -> str | None:
    """Keep what was typed into the workspace form at `path` while its officer signs in
    again: the id to come back with, or None when there is nothing of a form to keep."""
    found = rules.form_fields(path)
    fields = rules.kept_fields(found[1], sent) if found else {}
    if not found or not fields:
        return None
    kept_id = secrets.token_urlsafe(16)
    kept = {"page": rules.page_of("POST", path), "step": found[0], "fields": fields}
    await repository.save(ctx.pool(), _kept_key(browser, kept_id), rules.KEPT_FORM, kept, ctx.clock())
    return kept_id


async def restore_form(
    ctx: Context, browser: str, kept_id: str, page: str
) -> tuple[str, dict[str, Any]] | None:
    """The step and fields kept for this browser and `page` (once: they are gone after),
    while fresh; else None."""
    key, fresh_since = _kept_key(browser, kept_id), ctx.clock() - rules.KEPT_FORM_FOR
    kept = await repository.take(ctx.pool(), key, rules.KEPT_FORM, fresh_since)
    if kept.get("page") != page:
        return None
    return str(kept["step"]), dict(kept["fields"])


# ----- complaints, with the officer's own token ---------------------------------------------


def _known(code: str, prefix: str) -> str:
    """A code as the services write it; anything not shaped like one is an unknown case
    (and never reaches a service's address)."""
    found = normalise_code(code)
    if not is_public_code(found, prefix):
        raise NotFound
    return found


async def as_officer(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except Refused as refused:
        if refused.status == UNAUTHENTICATED:
            raise SignInNeeded from refused
        if refused.status == FORBIDDEN:
            raise NotAllowed from refused
        if refused.status == NOT_FOUND:
            raise NotFound from refused
        raise


async def work_list(ctx: Context, officer: Signed, status: str, page: int) -> dict[str, Any]:
    """A page of the officer's complaints in `status`, the soonest SLA due first."""
    filters: dict[str, str | int] = {"status": status, "sort": "due", "page": page, "page_size": PAGE_SIZE}
    return await as_officer(lambda: ctx.complaints.officer_list(officer.token, **filters))


@dataclass
class CaseView:
    complaint: dict[str, Any]
    opds: list[dict[str, str]]
    suggestions: list[dict[str, Any]]


async def case(ctx: Context, officer: Signed, code: str) -> CaseView:
    """The complaint as the officer may see it, the OPDs to dispose to and, where it may
    still be merged, earlier open complaints like it."""
    code = _known(code, COMPLAINT_PREFIX)
    found = await as_officer(lambda: ctx.complaints.officer_complaint(officer.token, code))
    if found is None:
        raise NotFound
    similar: list[dict[str, Any]] = []
    if officer.role == rules.Role.COORDINATOR and found["status"] in rules.MERGEABLE[:2]:
        filters: dict[str, str | int] = {
            "category": found["category"],
            "kecamatan": found["kecamatan_code"],
            "page_size": 50,
        }
        candidates = await as_officer(lambda: ctx.complaints.officer_list(officer.token, **filters))
        similar = rules.suggestions(found, candidates.get("items", []))
    return CaseView(found, await ctx.complaints.opds(), similar)


@dataclass(frozen=True)
class Photo:
    """A photo chosen in a form, as the browser sent it."""

    content: bytes
    filename: str
    media_type: str


async def act(
    ctx: Context, officer: Signed, code: str, step: str, form: Mapping[str, str], photo: Photo | None = None
) -> Answer:
    """Read a complaint's form and send its command (resolving with the photo of the
    finished work, uploaded first once the form is otherwise right); `Refused` carries
    the service's reasons (a status that no longer allows it, a duplicate it does not
    know)."""
    code = _known(code, COMPLAINT_PREFIX)
    opds = {o["code"] for o in await ctx.complaints.opds()}
    result = rules.read_step(step, form, opds, code)
    if result.errors:
        return result
    body, command = result.values["body"], rules.STEPS[step][0]
    if photo is not None and step == rules.RESOLVE:
        try:
            body["photo"] = await ctx.complaints.upload_photo(photo.content, photo.filename, photo.media_type)
        except Refused:
            result.refuse(rules.RESOLUTION_PHOTO, f"error.{rules.RESOLUTION_PHOTO}.refused")
            return result
    await as_officer(lambda: ctx.complaints.officer_step(officer.token, code, command, body))
    return result


# ----- permit applications, with the officer's own token --------------------------------------


async def applications(ctx: Context, officer: Signed, status: str, page: int) -> dict[str, Any]:
    """A page of the licensing office's applications in `status`, newest first."""
    filters: dict[str, str | int] = {"status": status, "page": page, "page_size": PAGE_SIZE}
    return await as_officer(lambda: ctx.permits.officer_list(officer.token, **filters))


@dataclass
class ApplicationView:
    application: dict[str, Any]
    documents: list[dict[str, Any]]  # the permit type's: code, name, required, given, file


async def application(ctx: Context, officer: Signed, code: str) -> ApplicationView:
    """The application with its permit type's documents, each marked given or not."""
    code = _known(code, PERMIT_PREFIX)
    found = await as_officer(lambda: ctx.permits.officer_application(officer.token, code))
    if found is None:
        raise NotFound
    kinds = {t["code"]: t for t in await ctx.permits.permit_types()}
    refs = {d["code"]: d for d in found.get("document_refs", []) if d.get("ref") or d.get("file")}
    documents = [
        {**d, "given": d["code"] in refs, "file": refs.get(d["code"], {}).get("file")}
        for d in kinds.get(found["permit_type"], {}).get("documents", [])
    ]
    return ApplicationView(found, documents)


async def check_documents(
    ctx: Context, officer: Signed, code: str, form: Mapping[str, str], missing: list[str]
) -> Answer:
    """Read the document check and send it; `Refused` carries the service's reasons."""
    code = _known(code, PERMIT_PREFIX)
    view = await application(ctx, officer, code)
    result = rules.read_document_check(form, missing, {d["code"] for d in view.documents})
    if not result.errors:
        body = result.values["body"]
        await as_officer(lambda: ctx.permits.document_check(officer.token, code, body))
    return result


async def permit_step(ctx: Context, officer: Signed, code: str, step: str, form: Mapping[str, str]) -> Answer:
    """Read an application's form (an inspection, its result, the decision, issuing,
    revoking) and send its command; `Refused` carries the service's reasons."""
    code = _known(code, PERMIT_PREFIX)
    result = rules.read_permit_step(step, form, ctx.clock())
    if not result.errors:
        body, command = result.values["body"], rules.PERMIT_STEPS[step][0]
        await as_officer(lambda: ctx.permits.officer_step(officer.token, code, command, body))
    return result


# ----- attachments, shown inline -------------------------------------------------------------


def _file_id(value: str) -> str:
    """An attachment's id as the services name them (a UUID); anything else is unknown."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound from None


async def _download(call: Callable[[], Awaitable[Download | None]]) -> Download:
    found = await as_officer(call)
    if found is None:
        raise NotFound
    return found


async def document(ctx: Context, officer: Signed, code: str, document_id: str) -> Download:
    """An application's uploaded document, with the officer's token (an audited read
    there)."""
    code, found = _known(code, PERMIT_PREFIX), _file_id(document_id)
    return await _download(lambda: ctx.permits.document(officer.token, code, found))


async def complaint_photo(ctx: Context, officer: Signed, code: str, photo_id: str) -> Download:
    """A complaint's photo, with the officer's token (an audited read there)."""
    code, found = _known(code, COMPLAINT_PREFIX), _file_id(photo_id)
    return await _download(lambda: ctx.complaints.officer_photo(officer.token, code, found))
