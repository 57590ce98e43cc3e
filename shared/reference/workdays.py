"""Indonesian working-day arithmetic for service-level deadlines.

Public-service standards (Perpres 76/2013 on complaint handling, and most SOPs
derived from UU 25/2009 on public services) state deadlines in *hari kerja*
(working days), not calendar days. A working day here is Monday-Friday that is
neither a national public holiday (hari libur nasional) nor a *cuti bersama*
(collective leave day set each year by SKB 3 Menteri / Keppres): government
offices are closed on cuti bersama, so SLA clocks must not run on them.

Holiday data comes from the ``holidays`` package: its Indonesia calendar exposes
national holidays as the ``public`` category and cuti bersama as the
``government`` category ("Cuti Bersama …"); both are loaded. Deadlines are computed
on local dates in ``Asia/Jakarta`` (WIB), where Purworejo lies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

__all__ = ["WorkingCalendar", "default_calendar"]

_COUNTRY = "ID"
_LANGUAGE = "id"  # holiday names in Bahasa Indonesia, as shown to citizens and staff
_EXTRA_HOLIDAY_NAME = "Hari libur tambahan"
_SATURDAY = 5


def _holiday_categories() -> tuple[str, ...]:
    """National holidays plus cuti bersama, as far as the installed package offers."""
    supported = set(getattr(holidays.Indonesia, "supported_categories", (holidays.PUBLIC,)))
    wanted = (holidays.PUBLIC, getattr(holidays, "GOVERNMENT", "government"))
    return tuple(category for category in wanted if category in supported)


class WorkingCalendar:
    """Working days for Indonesian government offices.

    ``extra_holidays`` adds regional/ad-hoc closures (e.g. a Bupati's decree) on top
    of the national calendar. Holiday tables are loaded lazily per year and cached,
    so an instance is cheap to create and fast to query repeatedly.
    """

    def __init__(self, *, extra_holidays: Iterable[date] = (), tz: str = "Asia/Jakarta") -> None:
        self._tz = ZoneInfo(tz)
        self._extra: frozenset[date] = frozenset(extra_holidays)
        self._categories = _holiday_categories()
        self._years: dict[int, holidays.HolidayBase] = {}
        # Plain date sets: membership in a HolidayBase is slow (it normalises keys),
        # and SLA arithmetic asks for dozens of dates per request.
        self._closed: dict[int, frozenset[date]] = {}
        # (first date, n) -> n-th working day after it. Every request filed on the same
        # day asks the same questions (several SLA clocks of up to ~60 working days).
        self._after: dict[tuple[date, int], date] = {}

    @property
    def tz(self) -> ZoneInfo:
        """The time zone whose local dates define working days."""
        return self._tz

    def _holidays_for(self, year: int) -> holidays.HolidayBase:
        table = self._years.get(year)
        if table is None:
            table = holidays.country_holidays(
                _COUNTRY,
                years=year,
                categories=self._categories,
                language=_LANGUAGE,
                expand=False,
            )
            self._years[year] = table
        return table

    def holiday_name(self, d: date) -> str | None:
        """Name of the holiday / cuti bersama on ``d``, or ``None`` (weekends are not named)."""
        d = self._as_date(d)
        names: list[str] = []
        national = self._holidays_for(d.year).get(d)
        if national:
            names.append(national)
        if d in self._extra:
            names.append(_EXTRA_HOLIDAY_NAME)
        return "; ".join(names) if names else None

    def is_working_day(self, d: date) -> bool:
        """True for Monday-Friday that is no public holiday, cuti bersama or extra holiday.

        An aware datetime is judged by its local date (naive ones raise ValueError).
        """
        d = self._as_date(d)
        if d.weekday() >= _SATURDAY or d in self._extra:
            return False
        closed = self._closed.get(d.year)
        if closed is None:
            closed = self._closed[d.year] = frozenset(self._holidays_for(d.year).keys())
        return d not in closed

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        current = self._as_date(d) + timedelta(days=1)
        while not self.is_working_day(current):
            current += timedelta(days=1)
        return current

    def first_without_holiday(self, d: date) -> date:
        """``d``, or the first day after it that is no holiday or cuti bersama: the first
        day a polyclinic practising every day of the week offers places."""
        current = self._as_date(d)
        while self.holiday_name(current):
            current += timedelta(days=1)
        return current

    def local_date(self, moment: datetime) -> date:
        """The calendar date of an aware ``moment`` in this calendar's time zone."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("naive datetime: pass a timezone-aware datetime")
        return moment.astimezone(self._tz).date()

    def _as_date(self, d: date) -> date:
        # datetime is a subclass of date; use its local date, never its UTC date.
        return self.local_date(d) if isinstance(d, datetime) else d

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """Deadline at the end (23:59:59.999999 local) of the n-th working day after ``start``.

        The day containing ``start`` never counts, whatever the hour: a request filed
        on Friday with a 1-working-day SLA is due at the end of the next working day.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        first = self.local_date(start)
        current = self._after.get((first, n))
        if current is None:
            current = first
            for _ in range(n):
                current = self.next_working_day(current)
            if len(self._after) >= 4096:  # bounded: a long-running service sees many days
                self._after.clear()
            self._after[(first, n)] = current
        return datetime.combine(current, time.max, tzinfo=self._tz)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Count working days d with local_date(start) < d <= local_date(end); 0 if end <= start.

        Inverse of :meth:`add_working_days`: ``working_days_between(s,
        add_working_days(s, n)) == n``.
        """
        first, last = self.local_date(start), self.local_date(end)
        if end <= start:
            return 0
        count = 0
        current = first + timedelta(days=1)
        while current <= last:
            if self.is_working_day(current):
                count += 1
            current += timedelta(days=1)
        return count


@cache
def default_calendar() -> WorkingCalendar:
    """Shared calendar (national holidays + cuti bersama, Asia/Jakarta), built once."""
    return WorkingCalendar()
