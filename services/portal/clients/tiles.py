"""The regency's map tile server, fetched by the portal rather than by the citizen's
browser: the map's tiles come from the portal's own origin (the page loads nothing from
another, and no third party learns who looks where), and the tiles of the few places
most reports are about are answered from memory."""

from __future__ import annotations

import logging
from collections import OrderedDict

import httpx

log = logging.getLogger(__name__)
# Tiles kept in memory, newest used last (a 256-pixel tile is 10–30 kB: about 10 MB).
TILE_CACHE_SIZE = 512
# What a tile may be; anything else the tile server answers is not passed on.
TILE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


class TileServer:
    def __init__(self, template: str, timeout: float, capacity: int = TILE_CACHE_SIZE) -> None:
        """`template`: the tile server's URL with {z}, {x} and {y}."""
        self.template = template
        self.capacity = capacity
        self.cache: OrderedDict[tuple[int, int, int], tuple[bytes, str]] = OrderedDict()
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)))

    async def tile(self, z: int, x: int, y: int) -> tuple[bytes, str] | None:
        """The tile's bytes and media type, or None when the server has none (or is
        away: a map with a grey square is still a map)."""
        key = (z, x, y)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        try:
            response = await self.http.get(self.template.format(z=z, x=x, y=y))
        except httpx.TransportError as exc:
            log.warning("tile server unavailable", extra={"upstream": "tiles", "error": type(exc).__name__})
            return None
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if response.status_code != 200 or media_type not in TILE_TYPES:
            return None
        self.cache[key] = (response.content, media_type)
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return self.cache[key]

    async def close(self) -> None:
        await self.http.aclose()
