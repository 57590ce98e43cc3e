"""An independent count of Indonesian working days for the domains' SLA tests: one
calendar day at a time against the calendar's `is_working_day`, so a deadline computed
by the domain is checked by a different method than the one that made it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.reference import WorkingCalendar

WIB = ZoneInfo("Asia/Jakarta")


def end_of_day(d: date) -> datetime:
    return datetime.combine(d, time.max, tzinfo=WIB)


def nth_working_day_after(calendar: WorkingCalendar, start: date, n: int) -> date:
    d = start
    while n:
        d += timedelta(days=1)
        if calendar.is_working_day(d):
            n -= 1
    return d
