"""Public reference codes citizens hold (tracking codes, booking codes).

A code is the citizen's only key to their case, so it must be unguessable: 65 random
bits (13 Crockford base32 characters, no I, L, O, U: easy to read over the phone),
grouped for reading, after a service prefix and the year-month in WIB:
``ADU-2611-7K3M-9QW2-XAB4D``.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

# Each service's prefix: a code says which service holds its case (the portal's Lacak).
COMPLAINT_PREFIX = "ADU"
PERMIT_PREFIX = "IZN"
HEALTH_PREFIX = "KES"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
WIB = ZoneInfo("Asia/Jakarta")
RANDOM_CHARS = 13  # 13 x 5 bits = 65 bits

_PATTERN = r"[A-Z]{3}-\d{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}"
CODE_PATTERN = f"^{_PATTERN}$"


def new_public_code(prefix: str, now: datetime) -> str:
    chars = "".join(secrets.choice(CROCKFORD) for _ in range(RANDOM_CHARS))
    return f"{prefix}-{now.astimezone(WIB):%y%m}-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def normalise_code(raw: str) -> str:
    """Accept what people type: lower case, spaces, and the letters Crockford maps
    (O→0, I/L→1)."""
    text = raw.strip().upper().replace(" ", "")
    head, _, tail = text.partition("-")
    tail = tail.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    return f"{head}-{tail}" if tail else head


def is_public_code(value: str, prefix: str | None = None) -> bool:
    if not re.fullmatch(_PATTERN, value):
        return False
    return prefix is None or value.startswith(prefix + "-")
