"""Unit tests for shared.reference: pure functions, no I/O besides the packaged CSVs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.reference import (
    NIK,
    REGENCY_CODE,
    REGENCY_NAME,
    Desa,
    InvalidNIK,
    InvalidPhone,
    Kecamatan,
    UnknownRegion,
    WorkingCalendar,
    all_desa,
    all_kecamatan,
    default_calendar,
    find_desa,
    find_kecamatan,
    mask_email,
    mask_nik,
    mask_phone,
    normalize_mobile,
    parse_nik,
    require_desa,
    require_kecamatan,
)

WIB = ZoneInfo("Asia/Jakarta")
TODAY = date(2026, 1, 15)
END_OF_DAY = time.max


def wib(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB)


def deadline(y: int, m: int, d: int) -> datetime:
    return datetime.combine(date(y, m, d), END_OF_DAY, tzinfo=WIB)


# --------------------------------------------------------------------------- regions


def test_regency_constants() -> None:
    assert REGENCY_CODE == "33.06"
    assert REGENCY_NAME == "Kabupaten Purworejo"


def test_region_counts_and_consistency() -> None:
    kecamatan = all_kecamatan()
    desa = all_desa()
    assert len(kecamatan) == 16
    assert len(desa) == 494
    assert {d.kind for d in desa} == {"desa", "kelurahan"}
    assert sum(k.desa_count for k in kecamatan) == 494
    per_kecamatan = Counter(d.kecamatan_code for d in desa)
    assert per_kecamatan == {k.code: k.desa_count for k in kecamatan}
    names = {k.code: k.name for k in kecamatan}
    assert all(d.kecamatan_name == names[d.kecamatan_code] for d in desa)
    assert all(d.code.startswith(d.kecamatan_code + ".") for d in desa)
    assert all(k.code.startswith(REGENCY_CODE + ".") for k in kecamatan)


def test_region_lookups() -> None:
    assert find_desa("33.06.01.2001") == Desa(
        code="33.06.01.2001",
        name="Harjobinangun",
        kind="desa",
        kecamatan_code="33.06.01",
        kecamatan_name="Grabag",
    )
    assert find_kecamatan("33.06.06") == Kecamatan(code="33.06.06", name="Purworejo", desa_count=25)
    assert require_kecamatan("33.06.16").name == "Bener"
    assert require_desa(" 33.06.01.2001 ").name == "Harjobinangun"
    assert find_desa("33.06.99.2001") is None
    assert find_kecamatan("33.07.01") is None


def test_region_lists_are_copies() -> None:
    all_desa().clear()
    assert len(all_desa()) == 494


def test_unknown_region_messages() -> None:
    with pytest.raises(UnknownRegion) as excinfo:
        require_desa("33.06.99.2001")
    assert str(excinfo.value) == (
        "unknown desa/kelurahan code '33.06.99.2001' "
        "(expected one of Purworejo's 494 codes, e.g. 33.06.01.2001)"
    )
    assert isinstance(excinfo.value, ValueError)
    with pytest.raises(UnknownRegion, match=r"unknown kecamatan code '33\.06\.17'.*16 codes"):
        require_kecamatan("33.06.17")


# --------------------------------------------------------------------------- NIK


def test_parse_nik_valid_male() -> None:
    nik = parse_nik("3306061708900001", today=TODAY)
    assert nik == NIK(value="3306061708900001", region_code="33.06.06", birth_date=date(1990, 8, 17), sex="L")
    assert nik.regency_code == "33.06"
    assert nik.serial == "0001"
    assert "1708" not in repr(nik)


def test_parse_nik_valid_female() -> None:
    nik = parse_nik("3306065708900002", today=TODAY)
    assert nik.sex == "P"
    assert nik.birth_date == date(1990, 8, 17)
    assert nik.region_code == "33.06.06"


def test_parse_nik_default_today_and_whitespace() -> None:
    assert parse_nik(" 3306061708900001\n").value == "3306061708900001"


def test_parse_nik_century_choice() -> None:
    assert parse_nik("3306061708050001", today=TODAY).birth_date == date(2005, 8, 17)
    # 2030 would be in the future, so the 1900s are chosen.
    assert parse_nik("3306061708300001", today=TODAY).birth_date == date(1930, 8, 17)
    # 29 Feb 2000 exists, 29 Feb 1900 does not.
    assert parse_nik("3306062902000001", today=TODAY).birth_date == date(2000, 2, 29)
    # Born today is fine.
    assert parse_nik("3306061501260001", today=TODAY).birth_date == TODAY


def test_parse_nik_other_regency_is_accepted() -> None:
    # Kota Semarang (33.74); only Purworejo's kecamatan list is known locally.
    assert parse_nik("3374011708900001", today=TODAY).region_code == "33.74.01"


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        ("3306063208900001", "day", "day digits 32"),
        ("3306060008900001", "day", "day digits 00"),
        ("3306067208900001", "day", "day digits 72"),
        ("3306061713900001", "month", "month digits 13"),
        ("3306061700900001", "month", "month digits 00"),
        ("330606170890000", "length", "got 15"),
        ("33060617089000011", "length", "got 17"),
        ("", "length", "got 0"),
        ("33060617O8900001", "digits", "'O'"),
        ("abcdefghijklmnop", "digits", "'a'"),
        ("3306-0617-0890-0001", "digits", "'-'"),
        ("330606170890000١", "digits", "digits only"),  # Arabic-Indic digit one
        ("9906061708900001", "province", "province code 99"),
        ("2006061708900001", "province", "province code 20"),
        ("3300061708900001", "regency", "must not be 00"),
        ("3306001708900001", "kecamatan", "must not be 00"),
        ("3306171708900001", "kecamatan", "33.06.17 is not a kecamatan"),
        ("3306063102900001", "date", "does not exist"),
        ("3306062902010001", "date", "does not exist"),
        ("3306061708900000", "serial", "0000"),
    ],
)
def test_parse_nik_invalid(raw: str, reason: str, fragment: str) -> None:
    with pytest.raises(InvalidNIK) as excinfo:
        parse_nik(raw, today=TODAY)
    assert excinfo.value.reason == reason
    assert fragment in str(excinfo.value)


def test_parse_nik_future_birth_date() -> None:
    with pytest.raises(InvalidNIK, match="in the future") as excinfo:
        parse_nik("3306061708900001", today=date(1985, 1, 1))
    assert excinfo.value.reason == "future"


def test_parse_nik_rejects_non_text() -> None:
    with pytest.raises(InvalidNIK):
        parse_nik(3306061708900001)  # type: ignore[arg-type]


def test_mask_nik() -> None:
    assert mask_nik("3306061708900001") == "330606**********"
    assert mask_nik("12345") == "*****"


@given(st.text())
def test_parse_nik_only_raises_invalid_nik(raw: str) -> None:
    try:
        nik = parse_nik(raw, today=TODAY)
    except InvalidNIK as exc:
        assert str(exc)  # always a human-readable message
        return
    assert len(nik.value) == 16


@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_parse_nik_digit_strings(raw: str) -> None:
    try:
        nik = parse_nik(raw, today=TODAY)
    except InvalidNIK:
        return
    assert nik.value == raw
    assert nik.birth_date <= TODAY
    assert nik.sex in ("L", "P")


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("081234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+6281234567890", "+6281234567890"),
        ("+62 812-3456-7890", "+6281234567890"),
        ("(0812) 3456.7890", "+6281234567890"),
        ("0812345678", "+62812345678"),  # shortest: 9 national digits
        ("0812345678901", "+62812345678901"),  # longest: 12 national digits
        ("0895 1234 5678", "+6289512345678"),
    ],
)
def test_normalize_mobile_valid(raw: str, expected: str) -> None:
    assert normalize_mobile(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("08123", "length"),
        ("08123456789012", "length"),
        ("+14155550100", "country"),
        ("0212345678", "landline"),
        ("+62212345678", "landline"),
        ("0841234567890", "prefix"),
        ("0801234567890", "prefix"),
        ("abc", "format"),
        ("", "empty"),
        ("0812345678９", "format"),  # full-width digit
    ],
)
def test_normalize_mobile_invalid(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as excinfo:
        normalize_mobile(raw)
    assert excinfo.value.reason == reason
    assert isinstance(excinfo.value, ValueError)


@given(
    prefix=st.sampled_from(["0", "62", "+62", "+62 "]),
    operator=st.sampled_from("1235679"),
    rest=st.text(alphabet="0123456789", min_size=7, max_size=10),
)
def test_normalize_mobile_idempotent(prefix: str, operator: str, rest: str) -> None:
    normalized = normalize_mobile(f"{prefix}8{operator}{rest}")
    assert normalized == f"+628{operator}{rest}"
    assert normalize_mobile(normalized) == normalized


@given(st.text())
def test_normalize_mobile_only_raises_invalid_phone(raw: str) -> None:
    try:
        result = normalize_mobile(raw)
    except InvalidPhone:
        return
    assert normalize_mobile(result) == result


def test_masking() -> None:
    assert mask_phone("+6281234567890") == "+62812*****890"
    assert mask_phone("081234567890") == "+62812*****890"
    assert mask_phone("12345") == "*****"
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email("a@example.com") == "a***@example.com"
    assert mask_email("not-an-email") == "***"


# --------------------------------------------------------------------------- working days


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def test_holiday_data_2026(cal: WorkingCalendar) -> None:
    # National holidays and cuti bersama as returned by the `holidays` package.
    assert cal.holiday_name(date(2026, 8, 17)) == "Hari Kemerdekaan Republik Indonesia"
    assert cal.holiday_name(date(2026, 3, 21)) == "Hari Raya Idul Fitri"
    assert cal.holiday_name(date(2026, 3, 20)) == "Cuti Bersama Hari Raya Idul Fitri"
    assert cal.holiday_name(date(2026, 12, 24)) == "Cuti Bersama Hari Raya Natal"
    assert cal.holiday_name(date(2026, 8, 18)) is None
    assert cal.holiday_name(date(2026, 8, 15)) is None  # plain Saturday


def test_weekend_is_not_working(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(date(2026, 7, 3))  # Friday
    assert not cal.is_working_day(date(2026, 7, 4))  # Saturday
    assert not cal.is_working_day(date(2026, 7, 5))  # Sunday
    assert cal.next_working_day(date(2026, 7, 3)) == date(2026, 7, 6)
    assert cal.add_working_days(wib(2026, 7, 3, 16, 30), 1) == deadline(2026, 7, 6)
    assert cal.add_working_days(wib(2026, 7, 3, 16, 30), 5) == deadline(2026, 7, 10)
    assert cal.working_days_between(wib(2026, 7, 3, 9), wib(2026, 7, 6, 8)) == 1


def test_independence_day_2026(cal: WorkingCalendar) -> None:
    assert not cal.is_working_day(date(2026, 8, 17))  # Monday, Hari Kemerdekaan
    result = cal.add_working_days(wib(2026, 8, 14, 10), 1)
    assert result == wib(2026, 8, 18, 23, 59, 59, 999999)
    assert result.tzinfo is not None
    assert result.utcoffset() == timedelta(hours=7)
    assert cal.working_days_between(wib(2026, 8, 14, 10), wib(2026, 8, 18, 8)) == 1


def test_idul_fitri_2026(cal: WorkingCalendar) -> None:
    # 18 Mar cuti Nyepi, 19 Nyepi, 20 cuti, 21-22 Idul Fitri (weekend), 23-24 cuti.
    closed = [date(2026, 3, d) for d in range(18, 25)]
    assert not any(cal.is_working_day(d) for d in closed)
    assert cal.is_working_day(date(2026, 3, 17))
    assert cal.add_working_days(wib(2026, 3, 17, 10), 1) == deadline(2026, 3, 25)
    assert cal.add_working_days(wib(2026, 3, 16, 10), 2) == deadline(2026, 3, 25)
    assert cal.working_days_between(wib(2026, 3, 16, 10), wib(2026, 3, 25, 10)) == 2


def test_start_day_uses_local_date(cal: WorkingCalendar) -> None:
    # 20:00 UTC Thursday is 03:00 WIB Friday: Friday is the (non-counting) start day.
    start = datetime(2026, 8, 13, 20, tzinfo=UTC)
    assert cal.add_working_days(start, 1) == deadline(2026, 8, 18)
    # Datetimes are judged by their WIB date: 16:00 UTC is 23:00 WIB on Mon 17 Aug (holiday),
    # 17:00 UTC is 00:00 WIB on Tue 18 Aug (working day).
    assert not cal.is_working_day(datetime(2026, 8, 17, 16, tzinfo=UTC))
    assert cal.is_working_day(datetime(2026, 8, 17, 17, tzinfo=UTC))


def test_extra_holidays() -> None:
    cal = WorkingCalendar(extra_holidays=[date(2026, 7, 6)])
    assert not cal.is_working_day(date(2026, 7, 6))
    assert cal.holiday_name(date(2026, 7, 6)) == "Hari libur tambahan"
    assert cal.add_working_days(wib(2026, 7, 3, 9), 1) == deadline(2026, 7, 7)


def test_working_days_between_edge_cases(cal: WorkingCalendar) -> None:
    assert cal.working_days_between(wib(2026, 7, 10, 9), wib(2026, 7, 6, 9)) == 0
    assert cal.working_days_between(wib(2026, 7, 6, 9), wib(2026, 7, 6, 9)) == 0
    assert cal.working_days_between(wib(2026, 7, 6, 9), wib(2026, 7, 6, 17)) == 0


def test_naive_and_bad_arguments_rejected(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        cal.add_working_days(datetime(2026, 8, 14, 10), 1)
    with pytest.raises(ValueError, match="naive"):
        cal.working_days_between(datetime(2026, 8, 14), wib(2026, 8, 20))
    with pytest.raises(ValueError, match="n must be"):
        cal.add_working_days(wib(2026, 8, 14, 10), 0)


def test_default_calendar_is_shared() -> None:
    assert default_calendar() is default_calendar()
    assert default_calendar().tz == WIB


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2024, 1, 1),
        max_value=datetime(2027, 6, 30),
        timezones=st.sampled_from([WIB, UTC, ZoneInfo("Asia/Makassar")]),
    ),
    n=st.integers(min_value=1, max_value=60),
)
def test_add_working_days_properties(start: datetime, n: int) -> None:
    cal = default_calendar()
    result = cal.add_working_days(start, n)
    assert result.tzinfo == WIB
    assert result.time() == END_OF_DAY
    assert cal.is_working_day(result.date())
    assert result > start
    assert cal.working_days_between(start, result) == n
