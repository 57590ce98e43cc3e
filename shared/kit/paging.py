"""Paging of the officers' lists, alike in every service: `?page=` from 1 to 10 000
(1 by default), `?page_size=` from 1 to 200 (20 by default), and the answer
`{"items", "total", "page", "page_size"}`.

Why in the kit: the complaints, permits and notification services each wrote these
limits and this answer by hand; declared once, a list cannot drift from the others
(`page: PageNumber = 1, page_size: PageSize = 20` in a route's signature).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query

PageNumber = Annotated[int, Query(ge=1, le=10_000)]
PageSize = Annotated[int, Query(ge=1, le=200)]


def page_of(items: Sequence[Any], total: int, page: int, page_size: int) -> dict[str, Any]:
    """One page of a list as the routes answer it: the page's items and the total."""
    return {"items": items, "total": total, "page": page, "page_size": page_size}
