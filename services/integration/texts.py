"""What citizens wrote, opened when shown: the read model keeps a complaint's title sealed
as its event carried it, and the pages and the JSON API open it with the text key its
producer gives this view (role ``text_reader``, kept minutes at most by the kit's
`DataKeyClient`). Once the citizen is erased the producer has no key (404): the title
cannot be read, here or in any copy, and the pages say so in neutral words."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from shared.kit.data_keys import DataKeyClient, KeyServiceUnavailable
from shared.kit.privacy import open_citizen_text
from shared.schemas.common import SealedText

log = logging.getLogger(__name__)


async def with_titles(keys: DataKeyClient | None, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`rows` (of items, or of the feed joined with items) with each sealed title opened into
    `title`: None where its key is gone, or for now when its producer cannot be asked (a
    page is not refused for a title)."""
    opened = [dict(row) for row in rows]
    wanted = [(r["title_producer"], r["title_key_id"]) for r in opened if _sealed(r)]
    found: dict[str, str | None] = {}
    if wanted and keys is not None:
        try:
            found = await keys.keys(wanted)
        except KeyServiceUnavailable as exc:
            log.warning("text keys unavailable: titles not shown", extra={"error": str(exc)[:200]})
    for row in opened:
        if _sealed(row):
            row["title"] = _open(found.get(row["title_key_id"]), row["sealed_title"])
    return opened


def _sealed(row: Mapping[str, Any]) -> bool:
    return bool(row.get("sealed_title") and row.get("title_key_id") and row.get("title_producer"))


def _open(key: str | None, token: str) -> str | None:
    if key is None:
        return None
    try:
        return open_citizen_text(key, SealedText(sealed=token))
    except ValueError:
        return None
