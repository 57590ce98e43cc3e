"""The kit's security headers of pages (shared/kit/web.py): every answer carries them,
a streamed one too, the API documentation's does not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, StreamingResponse
from starlette.routing import Route

from shared.kit.web import PAGE_CSP, SecurityHeaders, page_headers


async def _page(_: object) -> HTMLResponse:
    return HTMLResponse("<p>halo</p>", headers={"Content-Language": "id"})


async def _stream(_: object) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"data: {n}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream")


def _app() -> Starlette:
    routes = [Route(path, _page) for path in ("/", "/docs", "/docs/oauth2-redirect", "/docsy")]
    app = Starlette(routes=[*routes, Route("/events", _stream)])
    app.add_middleware(SecurityHeaders)
    return app


async def test_every_answer_carries_the_page_headers_but_the_api_documentation() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://view") as client:
        for path in ("/", "/docsy", "/nowhere", "/events"):
            answer = await client.get(path)
            assert answer.headers["content-security-policy"] == PAGE_CSP, path
            assert answer.headers["referrer-policy"] == "no-referrer", path
            assert answer.headers["x-content-type-options"] == "nosniff", path
            assert answer.headers["x-frame-options"] == "DENY", path
        page = await client.get("/")
        assert page.headers["content-language"] == "id"  # the route's own headers stay
        stream = await client.get("/events")
        assert stream.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        for path in ("/docs", "/docs/oauth2-redirect"):
            assert "content-security-policy" not in (await client.get(path)).headers, path


def test_the_policy_forbids_inline_code_framing_and_foreign_origins() -> None:
    directives = dict(d.split(" ", 1) for d in PAGE_CSP.split("; "))
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["default-src"] == directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'self'"
    assert "unsafe" not in PAGE_CSP


def test_a_page_may_use_only_the_features_it_names() -> None:
    assert page_headers()["Permissions-Policy"] == "camera=(), microphone=(), geolocation=()"
    located = page_headers(own_features=["geolocation"])["Permissions-Policy"]
    assert located == "camera=(), microphone=(), geolocation=(self)"
    with pytest.raises(ValueError, match="not a feature"):
        page_headers(own_features=["usb"])
