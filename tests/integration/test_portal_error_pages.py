"""The portal answers its own faults with pages, never JSON or a trace: an upstream that
answers what no service would (a proxy's HTML page with 200) is a 500 page in plain
words, and its own database away is a 503 page with Retry-After, both carrying the
portal's security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from services.portal.app import PortalSettings, build
from shared.kit.settings import PlatformSettings
from tests.harness import http_server, running

# What a misconfigured proxy in front of a service answers: a page, with 200.
PROXY_PAGE = b"<html><body>Gateway page</body></html>"
TRACKING_CODE = "ADU-2612-9VM8-HGTH-DZHWT"


class _ProxyPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PROXY_PAGE)))
        self.end_headers()
        self.wfile.write(PROXY_PAGE)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def misbehaving_upstream() -> Iterator[str]:
    with http_server(_ProxyPage) as url:
        yield url


@pytest.fixture
async def portal(
    platform: PlatformSettings, fresh_database: str, misbehaving_upstream: str
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    upstream = {name: misbehaving_upstream for name in ("complaints_url", "permits_url", "health_url")}
    app = build(PortalSettings(database_url=fresh_database, platform=platform, **upstream))
    async with running(app, raise_app_exceptions=False) as client:
        yield client, app


def assert_a_portal_page(answer: httpx.Response) -> str:
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert "Traceback" not in answer.text and "internal error" not in answer.text
    return answer.text


async def test_an_answer_no_service_gives_is_a_page_in_plain_words(portal) -> None:
    client, _ = portal
    answer = await client.get("/lacak", params={"kode": TRACKING_CODE})
    assert answer.status_code == 500
    page = assert_a_portal_page(answer)
    assert "Maaf, ada masalah di sistem kami" in page
    english = await client.get("/lacak", params={"kode": TRACKING_CODE}, headers={"Accept-Language": "en"})
    assert english.status_code == 500
    assert "Sorry, something went wrong on our side" in assert_a_portal_page(english)


async def test_the_portals_database_away_is_a_page_saying_to_try_again(portal) -> None:
    client, app = portal
    await app.state.service.pool.close()  # type: ignore[attr-defined]
    answer = await client.get("/lapor/jenis")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "Portal sedang tidak dapat digunakan" in assert_a_portal_page(answer)
