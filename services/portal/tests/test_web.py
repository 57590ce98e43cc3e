"""The cookie-based site's safety without a server: cookies, tokens, headers."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.datastructures import FormData, UploadFile

from services.portal.app import PortalSettings, build
from services.portal.web import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    PortalEdge,
    csrf_token,
    safe_return,
    text_fields,
)
from shared.kit.settings import PlatformSettings


def _site(secure: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.csrf)

    app.add_middleware(PortalEdge, secret=b"k" * 32, secure_cookies=secure)
    return app


@pytest.mark.parametrize("secure", [True, False], ids=["production", "development"])
async def test_the_session_cookie_is_httponly_lax_and_secure_in_production(secure: bool) -> None:
    transport = httpx.ASGITransport(app=_site(secure))
    # A Secure cookie comes back over HTTPS only (TLS ends at the regency's proxy).
    base_url = "https://portal" if secure else "http://portal"
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        first = await client.get("/")
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and ("secure" in cookie) is secure
        session = first.cookies[SESSION_COOKIE]
        assert first.text == csrf_token(b"k" * 32, session)
        for name, value in SECURITY_HEADERS.items():
            assert first.headers[name] == value
        # The same session keeps its token and gets no new cookie.
        again = await client.get("/")
        assert again.text == first.text and "set-cookie" not in again.headers


def test_production_refuses_the_development_secret() -> None:
    settings = PortalSettings(platform=PlatformSettings(environment="production"))
    with pytest.raises(RuntimeError, match="PORTAL_SECRET_KEY"):
        build(settings)


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/lacak?kode=x", "/lacak?kode=x"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil", "/"),
        (None, "/"),
    ],
)
def test_the_language_switch_returns_only_to_this_site(asked: str | None, goes: str) -> None:
    assert safe_return(asked) == goes


def test_every_macro_of_the_pages_is_defined_once() -> None:
    # Jinja keeps the last definition of a name silently; a second one with other
    # arguments breaks every page calling the first (a 500, not an error at start).
    macros = Path(__file__).parents[1] / "templates" / "_macros.html"
    names = re.findall(r"{%-?\s*macro\s+(\w+)", macros.read_text())
    assert names and len(names) == len(set(names)), names


def test_a_forms_text_fields_leave_its_files_out() -> None:
    photo = UploadFile(io.BytesIO(b"\xff\xd8"), filename="foto.jpg")
    form = FormData([("judul", "Jalan rusak"), ("foto", photo), ("ubah", "1")])
    assert text_fields(form) == {"judul": "Jalan rusak", "ubah": "1"}
