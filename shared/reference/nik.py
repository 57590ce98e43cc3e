"""Indonesian NIK (Nomor Induk Kependudukan) parsing and masking.

A NIK is 16 digits ``PPRRSSDDMMYYXXXX``: province, regency/city, kecamatan, birth
day (+40 for women), birth month, two-digit birth year and a serial. There is no
check digit, so the best we can do offline is verify that every part is
plausible. Rejecting typos at the edge, with a message a front-office clerk can act
on, saves a round trip to Dukcapil and keeps garbage out of the event log.

NIKs are personal data: log them only through :func:`mask_nik`; the ``repr`` of
:class:`NIK` is masked for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from shared.reference.regions import REGENCY_CODE, find_kecamatan

__all__ = ["NIK", "PROVINCE_CODES", "InvalidNIK", "mask_nik", "parse_nik"]

NIK_LENGTH = 16

#: The two-digit province codes (kode provinsi) in use in Indonesia.
PROVINCE_CODES: frozenset[str] = frozenset(
    f"{code:02d}"
    for code in (
        *range(11, 20),  # Sumatra
        21,  # Kepulauan Riau
        *range(31, 37),  # Java
        *range(51, 54),  # Bali & Nusa Tenggara
        *range(61, 66),  # Kalimantan
        *range(71, 77),  # Sulawesi
        81,  # Maluku
        82,  # Maluku Utara
        *range(91, 98),  # Papua provinces
    )
)

_ASCII_DIGITS = frozenset("0123456789")
_FEMALE_DAY_OFFSET = 40
_WIB = ZoneInfo("Asia/Jakarta")


class InvalidNIK(ValueError):
    """A NIK failed validation; ``str(exc)`` is a message fit to show the user.

    ``reason`` is a short stable code (e.g. ``"length"``, ``"day"``) so API layers
    can map failures to error codes without parsing the message.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NIK:
    """A structurally valid NIK and the facts encoded in it."""

    value: str
    region_code: str  # kecamatan, dotted: "33.06.06"
    birth_date: date
    sex: Literal["L", "P"]  # L = laki-laki (male), P = perempuan (female)

    def __repr__(self) -> str:
        # Keep full NIKs and birth dates out of logs and tracebacks.
        return f"NIK({mask_nik(self.value)!r})"

    @property
    def regency_code(self) -> str:
        """Dotted regency/city code, e.g. ``33.06``."""
        return self.region_code[:5]

    @property
    def serial(self) -> str:
        """The four-digit serial number (last four digits)."""
        return self.value[12:]


def _fail(message: str, reason: str) -> InvalidNIK:
    return InvalidNIK(message, reason=reason)


def _resolve_birth_date(day: int, month: int, yy: int, today: date) -> date:
    """Pick 19yy or 20yy, preferring the most recent date that is not in the future."""
    real_dates: list[date] = []
    for year in (2000 + yy, 1900 + yy):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue  # e.g. 29 February in a non-leap century
        real_dates.append(candidate)
        if candidate <= today:
            return candidate
    if not real_dates:
        raise _fail(
            f"NIK birth date {day:02d}-{month:02d}-{yy:02d} does not exist "
            f"(day {day} is not in month {month})",
            "date",
        )
    raise _fail(
        f"NIK birth date {real_dates[-1].isoformat()} is in the future (today is {today})",
        "future",
    )


def parse_nik(raw: str, *, today: date | None = None) -> NIK:
    """Validate a NIK and decode region, birth date and sex.

    Surrounding whitespace is ignored; anything else that is not exactly 16 ASCII
    digits is rejected. ``today`` (default: today in WIB) decides the century of
    the two-digit birth year and rejects birth dates in the future.

    Raises :class:`InvalidNIK` (and nothing else) for any invalid input.
    """
    if not isinstance(raw, str):
        raise _fail(f"NIK must be text, got {type(raw).__name__}", "type")
    value = raw.strip()
    bad = [ch for ch in value if ch not in _ASCII_DIGITS]
    if bad:
        raise _fail(f"NIK must contain digits only, found {bad[0]!r}", "digits")
    if len(value) != NIK_LENGTH:
        raise _fail(f"NIK must be exactly {NIK_LENGTH} digits, got {len(value)}", "length")

    province, regency, kecamatan = value[0:2], value[2:4], value[4:6]
    if province not in PROVINCE_CODES:
        raise _fail(f"NIK starts with unknown province code {province}", "province")
    if regency == "00":
        raise _fail("NIK regency/city code (digits 3-4) must not be 00", "regency")
    if kecamatan == "00":
        raise _fail("NIK kecamatan code (digits 5-6) must not be 00", "kecamatan")
    region_code = f"{province}.{regency}.{kecamatan}"
    if region_code[:5] == REGENCY_CODE and find_kecamatan(region_code) is None:
        raise _fail(
            f"NIK kecamatan code {region_code} is not a kecamatan of Kabupaten Purworejo "
            f"(valid: {REGENCY_CODE}.01 to {REGENCY_CODE}.16)",
            "kecamatan",
        )

    day_digits, month_digits, year_digits = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex: Literal["L", "P"]
    if 1 <= day_digits <= 31:
        day, sex = day_digits, "L"
    elif 1 + _FEMALE_DAY_OFFSET <= day_digits <= 31 + _FEMALE_DAY_OFFSET:
        day, sex = day_digits - _FEMALE_DAY_OFFSET, "P"
    else:
        raise _fail(
            f"NIK birth day digits {value[6:8]} out of range (01-31 for men, 41-71 for women)",
            "day",
        )
    if not 1 <= month_digits <= 12:
        raise _fail(f"NIK birth month digits {value[8:10]} out of range (01-12)", "month")

    if value[12:] == "0000":
        raise _fail("NIK serial number (last 4 digits) must not be 0000", "serial")

    reference = today if today is not None else datetime.now(_WIB).date()
    birth_date = _resolve_birth_date(day, month_digits, year_digits, reference)
    return NIK(value=value, region_code=region_code, birth_date=birth_date, sex=sex)


def mask_nik(value: str) -> str:
    """Mask a NIK for logs and receipts: keep the 6-digit region prefix only.

    ``"3306061708900001"`` -> ``"330606**********"``. Input is not validated, so
    this is safe to call on anything a user typed; values of 6 characters or fewer
    are masked completely.
    """
    text = value.strip()
    if len(text) <= 6:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 6)
