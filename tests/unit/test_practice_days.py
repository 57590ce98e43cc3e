"""The days tests book clinic visits on (tests/practice_days.py) against the health
service's own booking rule, with the machine's date taken as a holiday; and the health
service started on a "today" of a test's choosing (HEALTH_TODAY), development only."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from services.health.app import HealthSettings, build
from services.health.domain import BookingPolicy, Schedule, open_sessions
from shared.kit.errors import InvalidField
from shared.kit.settings import PlatformSettings
from shared.reference import default_calendar
from tests.practice_days import REHEARSED_TODAY, clinic_today, practice_days

CALENDAR = default_calendar()
# The test polyclinic: one doctor practising every day of the week.
EVERY_DAY = [Schedule("UJI-D01", weekday, time(8), time(12), 10, 15, 5) for weekday in range(7)]
# Christmas and New Year's Day: the machine's date on a national holiday, at a year's end.
HOLIDAYS = [date(2026, 12, 25), date(2027, 1, 1)]


def offered(day: date, today: date) -> bool:
    """Whether the service takes a booking for `day`, asked early on `today`."""
    early = datetime.combine(today, time(6), tzinfo=CALENDAR.tz)
    try:
        return bool(open_sessions(EVERY_DAY, day, early, CALENDAR, BookingPolicy(), "Poli Uji"))
    except InvalidField:
        return False


@pytest.mark.parametrize("today", HOLIDAYS, ids=str)
def test_the_practice_days_after_a_holiday_are_the_days_the_service_offers(today: date) -> None:
    assert not offered(today, today)  # the premise: nobody practises that day
    days = practice_days(CALENDAR, today, 10)
    assert len(set(days)) == 10 and days == sorted(days) and days[0] > today
    following = [today + timedelta(days=n) for n in range(1, (days[-1] - today).days + 1)]
    # Every day the service offers up to the last one, and no other.
    assert [d for d in following if offered(d, today)] == days


@pytest.mark.parametrize("today", HOLIDAYS, ids=str)
def test_the_clinic_starts_on_the_first_day_with_a_queue(
    monkeypatch: pytest.MonkeyPatch, today: date
) -> None:
    monkeypatch.setenv(REHEARSED_TODAY, today.isoformat())
    day = clinic_today(CALENDAR)
    assert day > today and offered(day, day)
    assert not any(offered(d, d) for d in (today + timedelta(days=n) for n in range((day - today).days)))


def test_the_service_runs_on_the_today_it_is_given() -> None:
    day = clinic_today(CALENDAR) + timedelta(days=40)
    context = build(HealthSettings(today=day)).state.service.context
    assert context.today() == day


def test_a_chosen_today_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="HEALTH_TODAY"):
        HealthSettings(today=date(2027, 1, 4), platform=PlatformSettings(environment="production"))
