"""The days tests book a clinic visit on, by the health service's own rule: a test
polyclinic practises every day of the week, so it offers places on every day that is no
holiday or cuti bersama (`WorkingCalendar.first_without_holiday`). Tests take their days
from here, never from a loop of their own nor the machine's date, so that none fails, or
passes without checking, because of the day it runs on (2026-12-25, 2027-01-01, ...)."""

from __future__ import annotations

import os
from datetime import date, timedelta

from shared.kit.clock import utc_now
from shared.reference import WorkingCalendar

# A date (2026-12-25) the clinic's browser tests take as the machine's today: to rehearse
# a holiday on any day. Only for tests that give the service its "today" (HEALTH_TODAY).
REHEARSED_TODAY = "SINERGI_TEST_TODAY"


def practice_day(calendar: WorkingCalendar, day: date) -> date:
    """`day`, or the first day after it the test polyclinic practises."""
    return calendar.first_without_holiday(day)


def practice_days(calendar: WorkingCalendar, after: date, count: int = 1) -> list[date]:
    """The first `count` days strictly after `after` the test polyclinic practises
    (from tomorrow on, when `after` is today)."""
    days: list[date] = []
    day = after
    while len(days) < count:
        day = practice_day(calendar, day + timedelta(days=1))
        days.append(day)
    return days


def clinic_today(calendar: WorkingCalendar) -> date:
    """The "today" a test starts the health service on (HEALTH_TODAY), so that today has a
    queue: the machine's date (or REHEARSED_TODAY's), or the first practice day after it."""
    rehearsed = os.environ.get(REHEARSED_TODAY)
    today = date.fromisoformat(rehearsed) if rehearsed else calendar.local_date(utc_now())
    return practice_day(calendar, today)
