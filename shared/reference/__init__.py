"""Pure reference data and validators shared by all Sinergi services.

No I/O beyond reading the packaged CSV files: regions of Kabupaten Purworejo,
NIK parsing, Indonesian mobile-number normalisation, PII masking and the
working-day calendar used for SLA deadlines.
"""

from shared.reference.nik import NIK, PROVINCE_CODES, InvalidNIK, mask_nik, parse_nik
from shared.reference.phone import InvalidPhone, mask_email, mask_phone, normalize_mobile
from shared.reference.regions import (
    REGENCY_CODE,
    REGENCY_NAME,
    Desa,
    Kecamatan,
    UnknownRegion,
    all_desa,
    all_kecamatan,
    find_desa,
    find_kecamatan,
    require_desa,
    require_kecamatan,
)
from shared.reference.workdays import WorkingCalendar, default_calendar

__all__ = [
    "NIK",
    "PROVINCE_CODES",
    "REGENCY_CODE",
    "REGENCY_NAME",
    "Desa",
    "InvalidNIK",
    "InvalidPhone",
    "Kecamatan",
    "UnknownRegion",
    "WorkingCalendar",
    "all_desa",
    "all_kecamatan",
    "default_calendar",
    "find_desa",
    "find_kecamatan",
    "mask_email",
    "mask_nik",
    "mask_phone",
    "normalize_mobile",
    "parse_nik",
    "require_desa",
    "require_kecamatan",
]
