"""What every page of a cookie-based site needs: the session cookie, CSRF tokens on
every form, security headers, the language and rendering.

- The session cookie (`sesi`) is random, HttpOnly, SameSite=Lax, Secure in production;
  it names the citizen's draft (by its hash) and nothing else.
- CSRF: each POST form carries `csrf`, an HMAC of the session id under the portal's
  secret (a signed double-submit token). A POST without it, or with another session's,
  gets 403. Forms that only read (Lacak) use GET and carry no token, so it never lands
  in an address.
- Content-Security-Policy without inline script or style; assets come from /static only.
- The language is `bahasa` (a cookie set by /bahasa, which works without JavaScript),
  else the browser's Accept-Language; Indonesian by default.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.middleware.base import BaseHTTPMiddleware

from services.portal.clients.base import Download
from services.portal.i18n import translator
from shared.kit.attachments import inline_headers
from shared.kit.codes import WIB
from shared.kit.i18n import choose_language
from shared.kit.web import page_headers

HERE = Path(__file__).parent
SESSION_COOKIE = "sesi"
LANGUAGE_COOKIE = "bahasa"
CSRF_FIELD = "csrf"
# A language choice is remembered for a year; the session ends with the browser.
LANGUAGE_MAX_AGE = 365 * 24 * 3600
# The kit's page policy (shared/kit/web.py); Lapor's position comes from the phone.
SECURITY_HEADERS = page_headers(own_features=["geolocation"])

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class CsrfRefused(Exception):
    """A POST without this session's token."""


# Answers that are not pages: the same for everyone, cached by the browser, no session.
ASSET_PATHS = ("/static/", "/peta/")


def secured(response: Response, *, cached: bool = False) -> Response:
    """The security headers every answer carries (a page may have a stricter or wider
    policy of its own: the officers' sign-out); pages are never cached."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not cached:
        response.headers["Cache-Control"] = "no-store"
    return response


class PortalEdge(BaseHTTPMiddleware):
    """Gives each visitor a session cookie and every answer the security headers."""

    def __init__(self, app: Any, *, secret: bytes, secure_cookies: bool) -> None:
        super().__init__(app)
        self.secret = secret
        self.secure = secure_cookies

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        session = request.cookies.get(SESSION_COOKIE) or ""
        fresh = len(session) != 43  # token_urlsafe(32); anything else is replaced
        if fresh:
            session = secrets.token_urlsafe(32)
        request.state.session = session
        request.state.csrf = csrf_token(self.secret, session)
        request.state.secure = self.secure
        response = await call_next(request)
        if request.url.path.startswith(ASSET_PATHS):
            return secured(response, cached=True)
        secured(response)
        if fresh:
            response.set_cookie(
                SESSION_COOKIE, session, httponly=True, samesite="lax", secure=self.secure, path="/"
            )
        return response


def csrf_token(secret: bytes, session: str) -> str:
    return hmac.new(secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token is this session's; else `CsrfRefused`."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, request.state.csrf):
        raise CsrfRefused
    return form


def text_fields(form: FormData) -> dict[str, str]:
    """A form's text fields by name (its files left out)."""
    return {k: v for k, v in form.items() if isinstance(v, str)}


def language(request: Request) -> str:
    return choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def safe_return(path: str | None) -> str:
    """Only a path of this site to go back to (never another host)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    lang = language(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = env.get_template(template).render(
        t=translator(lang),
        lang=lang,
        csrf_field=CSRF_FIELD,
        # None when the request failed before the edge gave it one (an error page).
        csrf=getattr(request.state, "csrf", None),
        switch_url=f"/bahasa?ke={'en' if lang == 'id' else 'id'}&kembali={quote(here, safe='')}",
        **values,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Content-Language": lang})


def instant(value: str | None) -> datetime | None:
    """An instant of a service's answer (ISO 8601); None when it gave none."""
    return datetime.fromisoformat(value) if value else None


def when(value: str | None) -> str:
    """An instant of a service's answer as pages show it, in WIB."""
    found = instant(value)
    return found.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB") if found else "—"


def check_answers_page(
    request: Request,
    journey: str,
    *,
    rows: list[tuple[str, str, str]],
    errors: dict[str, str] | None,
    back: str,
    title: str,
    button: str,
    labels: str | None,
    change: str = "%s",
    note: str | None = None,
) -> HTMLResponse:
    """A journey's check-your-answers page (GOV.UK's pattern): each answer with a link to
    change it, then the button that sends them all to `/<journey>/periksa`. `title`,
    `button` and `note` are already in the page's language."""
    return render(
        request,
        "periksa.html",
        status_code=422 if errors else 200,
        rows=rows,
        errors=errors or {},
        back=back,
        title=title,
        button=button,
        labels=labels,
        change=change,
        note=note,
        action=f"/{journey}/periksa",
    )


def see_other(path: str) -> RedirectResponse:
    """After a form is sent, the next page: a GET, so reloading sends nothing twice."""
    return RedirectResponse(path, status_code=303)


def not_found_page(request: Request) -> HTMLResponse:
    """The page of an unknown code or address (also what a code not the citizen's gets)."""
    return message_page(request, 404, "notfound.title", "notfound.body")


def message_page(request: Request, status_code: int, title: str, *paragraphs: str) -> HTMLResponse:
    """A page that only says something (a service away, an expired form, no such page):
    a title and paragraphs, by message key."""
    t = translator(language(request))
    texts = [t(key) for key in paragraphs]
    return render(request, "message.html", status_code, title=t(title), paragraphs=texts, errors={})


def refusal(request: Request, key: str, messages: dict[str, str]) -> dict[str, str]:
    """A service's refusal of a sent form as the page's general error: what could not be
    done, in the page's words, then the service's reasons."""
    reasons = "; ".join(m for m in messages.values() if m)
    return {"": f"{translator(language(request))(key)}: {reasons}"}


def chosen_file(form: FormData, name: str) -> UploadFile | None:
    """The file a form's field `name` carries, if one was chosen."""
    field = form.get(name)
    return field if isinstance(field, UploadFile) and field.filename else None


def inline_file(download: Download, file_id: str) -> StreamingResponse:
    """A service's attachment (its id and type checked by the use case) passed on as it
    arrives, with the kit's inline headers: its type as the service read it from the
    content, nothing but the image or PDF itself from the portal's own origin."""
    return StreamingResponse(
        download.chunks,
        headers=inline_headers(uuid.UUID(file_id), download.media_type),
        background=BackgroundTask(download.close),
    )


def json_download(document: Any, filename: str) -> Response:
    """A machine-readable document the browser saves (no page: a plain form's answer),
    never kept by a cache on the way: it holds personal data."""
    return JSONResponse(
        document,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
