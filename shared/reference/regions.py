"""Administrative regions of Kabupaten Purworejo (kode wilayah 33.06).

Every service that accepts an address or routes a case to a kecamatan/desa office
needs the same authoritative list, so it lives here as packaged CSV data (a copy of
the Kemendagri codes) instead of being re-typed per service. The data is read once,
lazily, on first use; after that every lookup is an in-memory dict access.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal, TypeVar, cast

__all__ = [
    "REGENCY_CENTRE",
    "REGENCY_CODE",
    "REGENCY_LATITUDES",
    "REGENCY_LONGITUDES",
    "REGENCY_NAME",
    "Desa",
    "Kecamatan",
    "UnknownRegion",
    "all_desa",
    "all_kecamatan",
    "find_desa",
    "find_kecamatan",
    "require_desa",
    "require_kecamatan",
    "within_regency",
]

REGENCY_CODE = "33.06"
REGENCY_NAME = "Kabupaten Purworejo"
# A generous bounding box of the regency, (south, north) and (west, east): a point a
# citizen or a phone gives outside it cannot be about Purworejo.
REGENCY_LATITUDES = (-8.0, -7.4)
REGENCY_LONGITUDES = (109.7, 110.3)
# Purworejo town (alun-alun): where a map opens before anything is chosen.
REGENCY_CENTRE = (-7.713, 110.008)


def within_regency(lat: float, lon: float) -> bool:
    return (
        REGENCY_LATITUDES[0] <= lat <= REGENCY_LATITUDES[1]
        and REGENCY_LONGITUDES[0] <= lon <= REGENCY_LONGITUDES[1]
    )


DesaKind = Literal["desa", "kelurahan"]
_Region = TypeVar("_Region")

_WILAYAH_CSV = "purworejo_wilayah.csv"
_KECAMATAN_CSV = "purworejo_kecamatan.csv"


@dataclass(frozen=True, slots=True)
class Kecamatan:
    """A kecamatan (district); ``code`` is dotted, e.g. ``33.06.06``."""

    code: str
    name: str
    desa_count: int


@dataclass(frozen=True, slots=True)
class Desa:
    """A desa (village) or kelurahan (urban ward); ``code`` like ``33.06.06.1001``."""

    code: str
    name: str
    kind: DesaKind
    kecamatan_code: str
    kecamatan_name: str


class UnknownRegion(ValueError):
    """Raised by the ``require_*`` lookups for a code that is not in Purworejo."""


def _read_csv(name: str) -> list[dict[str, str]]:
    text = files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def _kecamatan_index() -> dict[str, Kecamatan]:
    rows = _read_csv(_KECAMATAN_CSV)
    return {
        row["kode"]: Kecamatan(code=row["kode"], name=row["nama"], desa_count=int(row["jumlah_kel_desa"]))
        for row in rows
    }


@cache
def _desa_index() -> dict[str, Desa]:
    index: dict[str, Desa] = {}
    for row in _read_csv(_WILAYAH_CSV):
        kind = row["jenis"]
        if kind not in ("desa", "kelurahan"):
            raise ValueError(f"{_WILAYAH_CSV}: unexpected jenis {kind!r} for {row['kode']}")
        index[row["kode"]] = Desa(
            code=row["kode"],
            name=row["nama"],
            kind=cast(DesaKind, kind),
            kecamatan_code=row["kode_kecamatan"],
            kecamatan_name=row["kecamatan"],
        )
    return index


def all_kecamatan() -> list[Kecamatan]:
    """All 16 kecamatan in code order (a fresh list, safe for callers to mutate)."""
    return list(_kecamatan_index().values())


def all_desa() -> list[Desa]:
    """All desa and kelurahan in code order (a fresh list, safe to mutate)."""
    return list(_desa_index().values())


def find_kecamatan(code: str) -> Kecamatan | None:
    """Look up a kecamatan by dotted code; ``None`` when it is not in Purworejo."""
    return _kecamatan_index().get(code.strip())


def find_desa(code: str) -> Desa | None:
    """Look up a desa/kelurahan by dotted code; ``None`` when it is not in Purworejo."""
    return _desa_index().get(code.strip())


def require_kecamatan(code: str) -> Kecamatan:
    """Like :func:`find_kecamatan` but raises :class:`UnknownRegion` with a usable hint."""
    return _require(_kecamatan_index(), code, "kecamatan")


def require_desa(code: str) -> Desa:
    """Like :func:`find_desa` but raises :class:`UnknownRegion` with a usable hint."""
    return _require(_desa_index(), code, "desa/kelurahan")


def _require(index: dict[str, _Region], code: str, kind: str) -> _Region:
    found = index.get(code.strip())
    if found is None:
        raise UnknownRegion(
            f"unknown {kind} code {code!r} "
            f"(expected one of Purworejo's {len(index)} codes, e.g. {next(iter(index))})"
        )
    return found
