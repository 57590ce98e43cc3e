"""The desa page's map, when the regency has a tile server (PORTAL_MAP_TILES_URL): a real
tile server on loopback, the portal passing its tiles on from its own origin, the citizen
marking the place by tapping the map (phone) or with the keyboard alone (desktop), and the
complaint filed with that point. Tiles outside the regency or at other zooms are not
passed on. Every page is audited as in test_portal.py (axe-core, weight, origins).
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from services.portal.domain import tile_of
from shared.reference.regions import within_regency
from shared.runtime.select import Infrastructure
from tests.browser.portal_support import DESKTOP, PHONE, Stack, officer_view, portal_stack
from tests.browser.test_portal import DESA, Hands, _answers, browsing
from tests.harness import http_server

TILE_PATH = re.compile(r"^/(\d+)/(\d+)/(\d+)\.png$")


class TileServer:
    """A map tile server: a grey 256-pixel PNG for every tile asked, and what was asked."""

    def __init__(self) -> None:
        image = Image.new("RGB", (256, 256), (226, 232, 236))
        ImageDraw.Draw(image).rectangle((0, 0, 255, 255), outline=(150, 160, 170))
        png = io.BytesIO()
        image.save(png, "PNG")
        self.png = png.getvalue()
        self.asked: list[tuple[int, int, int]] = []

    @contextmanager
    def serving(self) -> Iterator[str]:
        tiles = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = TILE_PATH.match(self.path)
                if found is None:
                    self.send_error(404)
                    return
                tiles.asked.append((int(found[1]), int(found[2]), int(found[3])))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tiles.png)))
                self.end_headers()
                self.wfile.write(tiles.png)

            def log_message(self, *_: Any) -> None:
                pass

        with http_server(Handler) as url:
            yield url + "/{z}/{x}/{y}.png"


@pytest.fixture(scope="module")
def tiles() -> Iterator[tuple[TileServer, str]]:
    server = TileServer()
    with server.serving() as template:
        yield server, template


@pytest.fixture(scope="module")
async def stack(infra: Infrastructure, tiles: tuple[TileServer, str]) -> AsyncIterator[Stack]:
    async with portal_stack(infra, {"PORTAL_MAP_TILES_URL": tiles[1]}) as started:
        yield started


async def marked_point(page: Any) -> tuple[float, float] | None:
    lat, lon = await page.input_value("#lat"), await page.input_value("#lon")
    return (float(lat), float(lon)) if lat and lon else None


@pytest.mark.parametrize(
    ("viewport", "keyboard"), [(PHONE, False), (DESKTOP, True)], ids=["phone-tap", "keyboard"]
)
async def test_the_place_marked_on_the_map_goes_with_the_report(
    browser: Any,
    stack: Stack,
    tiles: tuple[TileServer, str],
    viewport: dict[str, int],
    keyboard: bool,
    request: Any,
) -> None:
    server, _ = tiles
    title = f"Jalan amblas {request.node.callspec.id}"
    async with browsing(browser, stack, viewport, "peta-" + request.node.callspec.id) as (page, audit):
        hands = Hands(page, keyboard)
        await page.goto(stack.portal + "/lapor/jenis")
        point: tuple[float, float] | None = None
        for name, actions in _answers(title):
            await audit.page(page, name)
            if name == "desa":
                await hands.select("desa", DESA)
                view = page.locator("[data-map-view]")
                await view.wait_for(state="visible")
                asked = len(server.asked)
                assert asked > 0, "the map's tiles came from the tile server, through the portal"
                if keyboard:
                    await view.focus()
                    for key in ("+", "ArrowRight", "ArrowRight", "ArrowDown", "Enter"):
                        await page.keyboard.press(key)
                else:
                    await page.get_by_role("button", name="Perbesar").click()
                    box = await view.bounding_box()
                    await page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.3)
                await page.locator("[data-map-marked]").wait_for(state="visible")
                await audit.page(page, "desa-ditandai")
                point = await marked_point(page)
                assert point is not None and within_regency(*point)
                assert point != (-7.713, 110.008), (
                    "the mark is where the citizen put it, not the map's centre"
                )
                assert len(server.asked) > asked, "zooming or moving the map asked for more tiles"
                await hands.press("Lanjutkan")
                continue
            for verb, *args in actions:
                await getattr(hands, verb)(*args)
        await audit.page(page, "periksa")
        await hands.press("Kirim laporan")
        await audit.page(page, "selesai")
        code = (await page.inner_text("#kode")).strip()
        audit.check()
    case, _ = await officer_view(stack, code)
    assert point is not None and case["location"] == {"lat": point[0], "lon": point[1]}


async def test_only_the_regencys_tiles_at_the_maps_zooms_are_passed_on(
    stack: Stack, tiles: tuple[TileServer, str]
) -> None:
    server, _ = tiles
    town = tile_of(-7.713, 110.008, 15)
    async with httpx.AsyncClient(base_url=stack.portal, timeout=30) as portal:
        tile = await portal.get("/peta/15/{}/{}.png".format(*town))
        assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
        assert tile.content == server.png and "max-age" in tile.headers["cache-control"]
        before = len(server.asked)
        again = await portal.get("/peta/15/{}/{}.png".format(*town))
        assert again.content == server.png and len(server.asked) == before, "kept in memory"
        jakarta = tile_of(-6.2, 106.8, 15)
        for path in ("/peta/15/{}/{}.png".format(*jakarta), "/peta/5/25/16.png", "/peta/15/x/1.png"):
            assert (await portal.get(path)).status_code in (404, 422), path
    assert len(server.asked) == before, "nothing outside the regency was asked for"
