"""Public codes are unguessable and forgiving to type."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from shared.kit.codes import CROCKFORD, RANDOM_CHARS, is_public_code, new_public_code, normalise_code

NOW = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)  # already 1 November in WIB


def test_codes_carry_at_least_64_random_bits() -> None:
    assert RANDOM_CHARS * math.log2(len(CROCKFORD)) >= 64
    codes = {new_public_code("ADU", NOW) for _ in range(2000)}
    assert len(codes) == 2000
    assert all(is_public_code(c, "ADU") for c in codes)


def test_the_month_is_the_month_in_wib() -> None:
    assert new_public_code("IZN", NOW).startswith("IZN-2611-")


def test_normalise_accepts_what_people_type() -> None:
    code = new_public_code("KES", NOW)
    typed = code.lower().replace("0", "o").replace("1", "l")
    assert normalise_code(f"  {typed} ") == code
    assert not is_public_code("ADU-2611-7K3M9Q")
